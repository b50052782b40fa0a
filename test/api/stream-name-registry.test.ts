import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/api/event-store.js';
import {
  REGISTRY_AGGREGATE_TYPE,
  REGISTRY_ID,
  STREAM_REGISTERED,
  StreamNameRegistry,
} from '../../src/api/stream-name-registry.js';
import type { EventInput, PutOptions } from '../../src/types.js';
import { storeSubjects } from './store-subjects.js';

const DOMAIN = 'names';
const registration = (streamName: string, aggregateType = 'stream'): EventInput => ({
  type: STREAM_REGISTERED,
  data: JSON.stringify({ streamName, aggregateType }),
});

/** A store whose next registry put is preceded by another writer's registration of `name`. */
function racedBy(inner: EventStore, name: string): EventStore {
  let raced = false;
  const wrapper = Object.create(inner) as EventStore;
  wrapper.put = async (domain, aggregateType, id, events, options?: PutOptions) => {
    if (!raced && domain === DOMAIN) {
      raced = true;
      await inner.put(DOMAIN, REGISTRY_AGGREGATE_TYPE, REGISTRY_ID, [registration(name)]);
    }
    return inner.put(domain, aggregateType, id, events, options);
  };
  wrapper.get = (...args) => inner.get(...args);
  return wrapper;
}

for (const subject of storeSubjects) {
  afterAll(() => subject.cleanup());

  describe(`${subject.name}: stream-name registry`, () => {
    let store: EventStore | undefined;
    afterEach(async () => {
      await store?.close();
      store = undefined;
    });

    it('gives names the ids 1, 2, 3 … in registration order; a lookup registers nothing', async () => {
      store = await subject.open();
      const registry = new StreamNameRegistry(store, DOMAIN);
      expect(await registry.lookup('a')).toBeUndefined();
      expect(await registry.resolve('a', () => 'cart')).toEqual({ aggregateType: 'cart', id: 1n });
      expect(await registry.resolve('b', () => 'order')).toEqual({ aggregateType: 'order', id: 2n });
      expect(await registry.resolve('a', () => 'other')).toEqual({ aggregateType: 'cart', id: 1n });
      expect(await registry.lookup('c')).toBeUndefined();
      expect((await store.get(DOMAIN, REGISTRY_AGGREGATE_TYPE, REGISTRY_ID)).version).toBe(2);
    });

    it('losing a race for a name takes the winner’s id; losing a race for another name takes the next', async () => {
      store = await subject.open();
      const sameName = new StreamNameRegistry(racedBy(store, 'x'), DOMAIN);
      expect(await sameName.resolve('x', () => 'stream')).toEqual({ aggregateType: 'stream', id: 1n });
      expect((await store.get(DOMAIN, REGISTRY_AGGREGATE_TYPE, REGISTRY_ID)).version).toBe(1);

      const otherName = new StreamNameRegistry(racedBy(store, 'y'), DOMAIN);
      expect(await otherName.resolve('z', () => 'stream')).toEqual({ aggregateType: 'stream', id: 3n });
      expect(await otherName.lookup('y')).toEqual({ aggregateType: 'stream', id: 2n });
      expect(await otherName.lookup('x')).toEqual({ aggregateType: 'stream', id: 1n });
    });

    it('many registries resolving overlapping names concurrently agree, with no id given twice', async () => {
      store = await subject.open();
      const opened = store;
      const registries = [1, 2, 3, 4].map(() => new StreamNameRegistry(opened, DOMAIN));
      const names = Array.from({ length: 10 }, (_, i) => `n${i}`);
      const answers = await Promise.all(
        registries.map((registry, r) =>
          Promise.all(
            names
              .map((_, i) => names[(i + r * 3) % names.length]!)
              .map((n) => registry.resolve(n, () => 'stream')),
          ),
        ),
      );
      const byName = new Map<string, bigint>();
      for (const [r, answer] of answers.entries()) {
        for (const [i, { id }] of answer.entries()) {
          const name = names[(i + r * 3) % names.length]!;
          expect(byName.get(name) ?? id, name).toBe(id);
          byName.set(name, id);
        }
      }
      expect(new Set(byName.values()).size).toBe(names.length);
      expect((await opened.get(DOMAIN, REGISTRY_AGGREGATE_TYPE, REGISTRY_ID)).version).toBe(names.length);
    });

    it('keeps the first of two registrations of one name written past it; refuses what is not a registration', async () => {
      store = await subject.open();
      await store.put(DOMAIN, REGISTRY_AGGREGATE_TYPE, REGISTRY_ID, [
        registration('d', 'first'),
        registration('d', 'second'),
      ]);
      expect(await new StreamNameRegistry(store, DOMAIN).lookup('d')).toEqual({
        aggregateType: 'first',
        id: 1n,
      });

      await store.put(DOMAIN, REGISTRY_AGGREGATE_TYPE, REGISTRY_ID, [
        { type: STREAM_REGISTERED, data: '{"streamName":1}' },
      ]);
      await expect(new StreamNameRegistry(store, DOMAIN).lookup('e')).rejects.toMatchObject({
        code: 'CORRUPT_DATA',
      });
    });

    it('refuses empty and overlong names and bad aggregate types', async () => {
      store = await subject.open();
      const registry = new StreamNameRegistry(store, DOMAIN);
      await expect(registry.lookup('')).rejects.toMatchObject({ code: 'INVALID_NAME' });
      await expect(registry.resolve('é'.repeat(2049), () => 'stream')).rejects.toMatchObject({
        code: 'INVALID_NAME',
      });
      await expect(registry.resolve('ok', () => 'Not A Type')).rejects.toMatchObject({
        code: 'INVALID_NAME',
      });
      expect(await registry.resolve('é'.repeat(2048), () => 'stream')).toEqual({
        aggregateType: 'stream',
        id: 1n,
      });
    });
  });
}
