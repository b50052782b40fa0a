import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type Consumer, type ConsumerOptions, consumer } from '../../src/api/consumer.js';
import { CONSUMER_POSITIONS_DOMAIN } from '../../src/api/consumer-positions.js';
import type { EventStore } from '../../src/api/event-store.js';
import { RingStore } from '../../src/api/ring-store.js';
import type { StoredEvent } from '../../src/types.js';
import { InstrumentedStore } from '../support/instrumented-store.js';
import { storeSubjects, turn } from './store-subjects.js';

async function codeOf(run: () => unknown): Promise<string | undefined> {
  try {
    await run();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

async function putMany(store: EventStore, domain: string, count: number, type = 'A'): Promise<void> {
  for (let i = 0; i < count; i++) await store.put(domain, 'a', BigInt(1 + (i % 5)), [{ type }]);
}

/** Positions stored under a name so far: the version of its positions instance. */
async function storedCount(store: EventStore, name: string): Promise<number> {
  return (await store.get(CONSUMER_POSITIONS_DOMAIN, name, 1n, { limit: 0 })).version;
}

for (const subject of storeSubjects) {
  afterAll(() => subject.cleanup());

  describe(`${subject.name}: durable consumers`, () => {
    let store: EventStore;
    afterEach(async () => {
      await store?.close();
    });

    it('handles the backlog, then live events, and close() stores where it stopped', async () => {
      store = await subject.open();
      await putMany(store, 'billing', 4);
      const seen: number[] = [];
      const live = consumer(store, 'mailer', { domain: 'billing', idleCheckMs: 20 });
      const running = live.run(async (event) => {
        seen.push(event.position);
      });
      while (seen.length < 4) await turn();
      await putMany(store, 'billing', 2);
      while (seen.length < 6) await turn();
      expect(live.running).toBe(true);
      await live.close();
      expect(live.running).toBe(false);
      expect(await running).toEqual({ endReason: 'closed', nextPosition: 6, handled: 6 });
      expect(seen).toEqual([0, 1, 2, 3, 4, 5]);
      expect(await live.position()).toEqual({ nextPosition: 6, version: await storedCount(store, 'mailer') });
      // Nothing new: a second run handles nothing and stores nothing.
      const before = await storedCount(store, 'mailer');
      const idle = await consumer(store, 'mailer', { domain: 'billing', endWhenCaughtUp: true }).run(() => {
        throw new Error('nothing to handle');
      });
      expect(idle).toEqual({ endReason: 'caught-up', nextPosition: 6, handled: 0 });
      expect(await storedCount(store, 'mailer')).toBe(before);
    });

    it('stores a position every checkpointEvery events and when drained: ceil(n / k) positions for n events', async () => {
      store = await subject.open();
      await putMany(store, 'd', 23);
      for (const [name, every] of [
        ['every-one', 1],
        ['every-five', 5],
        ['every-hundred', 100],
      ] as const) {
        const result = await consumer(store, name, {
          domain: 'd',
          checkpointEvery: every,
          endWhenCaughtUp: true,
        }).run(() => {});
        expect(result.nextPosition).toBe(23);
        expect(await storedCount(store, name), name).toBe(Math.ceil(23 / every));
      }
    });

    it('holds at most one page however long the log', async () => {
      store = await subject.open();
      await putMany(store, 'd', 120);
      const reads = new InstrumentedStore(store);
      let handled = 0;
      let mostHeld = 0;
      await consumer(reads, 'slow', { domain: 'd', pageSize: 7, endWhenCaughtUp: true }).run(async () => {
        handled++;
        mostHeld = Math.max(mostHeld, reads.eventsRead - handled);
        await turn();
      });
      expect(handled).toBe(120);
      expect(mostHeld).toBeLessThanOrEqual(7);
    });

    it('a throwing handler stops the run; the next run starts with the failed event', async () => {
      store = await subject.open();
      await putMany(store, 'd', 6);
      const options: ConsumerOptions = { domain: 'd', endWhenCaughtUp: true, checkpointEvery: 100 };
      const first = consumer(store, 'projector', options);
      await expect(
        first.run((event) => {
          if (event.position === 4) throw new Error('cannot project 4');
        }),
      ).rejects.toThrow('cannot project 4');
      expect(first.running).toBe(false);
      expect(await first.position()).toMatchObject({ nextPosition: 4 });
      const again: number[] = [];
      await first.run((event) => {
        again.push(event.position);
      });
      expect(again).toEqual([4, 5]);
    });

    it('one name, one runner: a second run, a second consumer that stored meanwhile, another domain', async () => {
      store = await subject.open();
      await putMany(store, 'd', 3);
      const a = consumer(store, 'shared', { domain: 'd', idleCheckMs: 20 });
      const running = a.run(() => {});
      expect(await codeOf(() => a.run(() => {}))).toBe('CONSUMER_CONFLICT');
      await a.close();
      await running;

      await putMany(store, 'd', 2);
      let release: () => void = () => {};
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const slow = consumer(store, 'shared', { domain: 'd', checkpointEvery: 1 });
      const slowRun = slow.run(() => gate);
      while ((await store.read('d', { fromPosition: 3 })).events.length < 2) await turn();
      await turn();
      // Another consumer of the same name moves the position while `slow` is in its handler.
      await consumer(store, 'shared', { domain: 'd', endWhenCaughtUp: true }).run(() => {});
      release();
      expect(await codeOf(() => slowRun)).toBe('CONSUMER_CONFLICT');
      expect(await codeOf(() => consumer(store, 'shared', { domain: 'other' }).run(() => {}))).toBe(
        'CONSUMER_CONFLICT',
      );
    });

    it('ends on close() before it started, on close() from its handler, on abort, and when the store closes', async () => {
      store = await subject.open();
      await putMany(store, 'd', 5);
      const early = consumer(store, 'early', { domain: 'd' });
      const earlyRun = early.run(() => {});
      await early.close();
      expect(await earlyRun).toEqual({ endReason: 'closed', nextPosition: 0, handled: 0 });

      const self: Consumer = consumer(store, 'self', { domain: 'd' });
      const selfRun = self.run((event) => {
        if (event.position === 2) void self.close();
      });
      expect(await selfRun).toEqual({ endReason: 'closed', nextPosition: 3, handled: 3 });

      const abort = new AbortController();
      const aborted = consumer(store, 'aborted', { domain: 'd', signal: abort.signal });
      const abortedRun = aborted.run((event) => {
        if (event.position === 1) abort.abort();
      });
      expect(await abortedRun).toEqual({ endReason: 'aborted', nextPosition: 2, handled: 2 });

      const waiting = consumer(store, 'waiting', { domain: 'd', checkpointEvery: 1 });
      const waitingRun = waiting.run(() => {});
      while ((await waiting.position()).nextPosition < 5) await turn();
      await store.close();
      expect(await waitingRun).toEqual({ endReason: 'store-closed', nextPosition: 5, handled: 5 });
    });

    it('validates its name and options when made, and refuses a stored record that is not a position', async () => {
      store = await subject.open();
      const s = store;
      const make = (name: string, options: Partial<ConsumerOptions>) => () =>
        consumer(s, name, { domain: 'd', ...options });
      expect(await codeOf(make('Bad Name', {}))).toBe('INVALID_NAME');
      expect(await codeOf(make('ok', { domain: 'Bad' }))).toBe('INVALID_NAME');
      expect(await codeOf(make('ok', { domain: CONSUMER_POSITIONS_DOMAIN }))).toBe('INVALID_OPTION');
      expect(await codeOf(make('ok', { checkpointEvery: 0 }))).toBe('INVALID_OPTION');
      expect(await codeOf(make('ok', { idleCheckMs: 0 }))).toBe('INVALID_OPTION');
      expect(await codeOf(make('ok', { types: ['1x'] }))).toBe('INVALID_NAME');
      expect(await codeOf(make('ok', { pageSize: 0 }))).toBe('INVALID_QUERY');
      expect(await codeOf(() => consumer(s, 'ok', { domain: 'd' }).run(42 as never))).toBe('INVALID_OPTION');
      await s.put(CONSUMER_POSITIONS_DOMAIN, 'broken', 1n, [{ type: 'Other', data: '{}' }]);
      expect(await codeOf(() => consumer(s, 'broken', { domain: 'd' }).position())).toBe('CORRUPT_DATA');
    });
  });
}

describe('durable consumers across a restart (RingStore, close and reopen)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringstore-consumer-restart-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const open = () => RingStore.open({ dir, durability: 'fsync', ringBytes: 1 << 20 });

  it('resumes from the stored position, hands a failed event out again, and redelivers what a closed store did not store', async () => {
    let store = await open();
    await putMany(store, 'orders', 10);
    const options: ConsumerOptions = { domain: 'orders', endWhenCaughtUp: true, checkpointEvery: 3 };
    const handled: number[] = [];
    const failing = store.consumer('fulfilment', options).run((event: StoredEvent) => {
      if (event.position === 7) throw new Error('warehouse down');
      handled.push(event.position);
    });
    await expect(failing).rejects.toThrow('warehouse down');
    expect(handled).toEqual([0, 1, 2, 3, 4, 5, 6]);
    await store.close();

    store = await open();
    expect(await store.consumer('fulfilment', options).position()).toMatchObject({ nextPosition: 7 });
    const afterRestart: number[] = [];
    const result = await store.consumer('fulfilment', options).run((event: StoredEvent) => {
      afterRestart.push(event.position);
    });
    expect(afterRestart).toEqual([7, 8, 9]);
    expect(result).toMatchObject({ endReason: 'caught-up', nextPosition: 10 });

    // Storing every 3 events: the store closes while the 5th is handled, so the position stays
    // after the 3rd and the last 2 are handed out again after the restart (at-least-once).
    await store.put(
      'orders',
      'a',
      9n,
      Array.from({ length: 5 }, () => ({ type: 'A' })),
    );
    const crashing = store.consumer('fulfilment', { domain: 'orders', checkpointEvery: 3 });
    const handledBeforeClose: number[] = [];
    const crashed = await crashing.run(async (event: StoredEvent) => {
      handledBeforeClose.push(event.position);
      if (event.position === 14) await store.close();
    });
    expect(handledBeforeClose).toEqual([10, 11, 12, 13, 14]);
    expect(crashed).toEqual({ endReason: 'store-closed', nextPosition: 13, handled: 5 });

    store = await open();
    const redelivered: number[] = [];
    await store
      .domain('orders')
      .consumer('fulfilment', { endWhenCaughtUp: true })
      .run((event: StoredEvent) => {
        redelivered.push(event.position);
      });
    expect(redelivered).toEqual([13, 14]);
    expect(await store.consumer('fulfilment', options).position()).toMatchObject({ nextPosition: 15 });
    await store.close();
  });
});
