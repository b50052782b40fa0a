import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/api/event-store.js';
import { readStream } from '../../src/api/streams.js';
import { type Subscription, subscribe } from '../../src/api/subscription.js';
import type { StoredEvent } from '../../src/types.js';
import { InstrumentedStore } from '../support/instrumented-store.js';
import {
  collect,
  describeEvent,
  randomInt,
  seededRandom,
  storeSubjects,
  testSeed,
  turn,
  writeRandomLog,
} from './store-subjects.js';

const LOG_SHAPE = {
  domains: ['billing', 'shipping'],
  aggregateTypes: ['invoice', 'order'],
  eventTypes: ['Opened', 'Paid', 'Closed'],
  instancesPerType: 8,
  batches: 60,
  maxBatchEvents: 5,
};

/** Liveness bound for one next(): a lost event fails the test here instead of hanging it. */
const NEXT_BOUND_MS = 5_000;

function nextWithin(sub: Subscription): Promise<IteratorResult<StoredEvent, undefined>> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no event within ${NEXT_BOUND_MS} ms`)), NEXT_BOUND_MS);
  });
  return Promise.race([sub.next(), bound]).finally(() => clearTimeout(timer));
}

async function take(sub: Subscription, count: number): Promise<StoredEvent[]> {
  const events: StoredEvent[] = [];
  while (events.length < count) {
    const result = await nextWithin(sub);
    if (result.done) break;
    events.push(result.value);
  }
  return events;
}

/** Proves a subscription holds nothing more: a pending next() must end done when closed. */
async function expectNothingMore(sub: Subscription): Promise<void> {
  const pending = sub.next();
  await turn();
  await sub.close();
  expect(await pending).toEqual({ done: true, value: undefined });
}

for (const subject of storeSubjects) {
  afterAll(() => subject.cleanup());

  describe(`${subject.name}: subscriptions`, () => {
    let store: EventStore | undefined;
    afterEach(async () => {
      await store?.close();
      store = undefined;
    });

    async function prepared(seed: number, batches = LOG_SHAPE.batches) {
      const random = seededRandom(seed);
      const s = await subject.open();
      store = s;
      const logs = await writeRandomLog(s, random, { ...LOG_SHAPE, batches });
      return { store: s, logs, random };
    }

    it('delivers the metadata of each event, from the backlog and live', async () => {
      const s = await subject.open();
      store = s;
      await s.put('billing', 'invoice', 1n, [{ type: 'Opened', metadata: '{"correlationId":"c-1"}' }]);
      const sub = subscribe(s, 'billing', { fromPosition: 0 });
      const [backlog] = await take(sub, 1);
      await s.put('billing', 'invoice', 1n, [{ type: 'Paid', metadata: new Uint8Array([0, 255]) }]);
      const [live] = await take(sub, 1);
      await sub.close();
      expect(new TextDecoder().decode(backlog!.metadata)).toBe('{"correlationId":"c-1"}');
      expect([...live!.metadata]).toEqual([0, 255]);
    });

    it('a subscriber started at every position of a prepared log sees exactly the suffix', async () => {
      const seed = testSeed(4301);
      const { store, logs, random } = await prepared(seed);
      const log = logs.get('billing')!;
      expect(log.length).toBeGreaterThan(50);
      for (let from = 0; from <= log.length + 1; from++) {
        const pageSize = randomInt(random, 1, 40);
        const context = `seed ${seed} fromPosition ${from} pageSize ${pageSize}`;
        const sub = subscribe(store, 'billing', { fromPosition: from, pageSize });
        const suffix = log.slice(from);
        const seen = await take(sub, suffix.length);
        expect(seen.map(describeEvent), context).toEqual(suffix.map(describeEvent));
        expect(sub.nextPosition, context).toBe(Math.max(from, log.length));
        await expectNothingMore(sub);
        const paid = subscribe(store, 'billing', { fromPosition: from, pageSize, types: ['Paid'] });
        const paidSuffix = suffix.filter((e) => e.type === 'Paid');
        expect((await take(paid, paidSuffix.length)).map(describeEvent), context).toEqual(
          paidSuffix.map(describeEvent),
        );
        await expectNothingMore(paid);
      }
    });

    it('delivers backlog and live events without gap or duplicate while writers run (seeded)', async () => {
      const seed = testSeed(4302);
      const { store, random } = await prepared(seed, 300);
      const all = subscribe(store, 'billing', { pageSize: 25 });
      const paid = subscribe(store, 'billing', { pageSize: 7, types: ['Paid', 'End'] });
      let writing = true;
      let liveWhileWriting = 0;
      const writers = Array.from({ length: 3 }, async (_, w) => {
        const writerRandom = seededRandom(seed + 10 + w);
        for (let i = 0; i < 80; i++) {
          await writeRandomLog(store, writerRandom, { ...LOG_SHAPE, batches: 1 });
          for (let t = randomInt(writerRandom, 0, 40); t > 0; t--) await turn();
        }
      });
      // Each consumer runs until the 'End' event written after all writers finished.
      const consume = async (sub: Subscription): Promise<StoredEvent[]> => {
        const seen: StoredEvent[] = [];
        for (;;) {
          const result = await nextWithin(sub);
          if (result.done) throw new Error('subscription ended early');
          seen.push(result.value);
          if (sub === all && sub.caughtUp && writing) liveWhileWriting++;
          if (result.value.type === 'End') return seen;
          if (random() < 0.5) await turn();
        }
      };
      const consumers = Promise.all([consume(all), consume(paid)]);
      await Promise.all(writers);
      writing = false;
      await store.put('billing', 'invoice', 1n, [{ type: 'End' }]);
      const [seenAll, seenPaid] = await consumers;
      await expectNothingMore(all);
      await expectNothingMore(paid);
      const final = await collect(readStream(store, 'billing'));
      expect(seenAll.map(describeEvent), `seed ${seed}`).toEqual(final.map(describeEvent));
      expect(seenPaid.map(describeEvent), `seed ${seed}`).toEqual(
        final.filter((e) => e.type === 'Paid' || e.type === 'End').map(describeEvent),
      );
      // The run really switched from catch-up to live while writers were still appending.
      expect(liveWhileWriting, `seed ${seed}`).toBeGreaterThan(0);
    });

    it('caughtUp turns true on exactly the last backlog event, for every page size (seeded)', async () => {
      const seed = testSeed(4308);
      const { store, logs, random } = await prepared(seed, 40);
      const log = logs.get('billing')!;
      const paid = log.filter((e) => e.type === 'Paid');
      for (let pageSize = 1; pageSize <= log.length + 2; pageSize++) {
        const from = randomInt(random, 0, 3);
        const context = `seed ${seed} pageSize ${pageSize} fromPosition ${from}`;
        const flags: boolean[] = [];
        const announced: number[] = [];
        const sub = subscribe(store, 'billing', {
          pageSize,
          fromPosition: from,
          onCaughtUp: () => announced.push(flags.length),
        });
        for await (const _ of sub) {
          flags.push(sub.caughtUp);
          if (sub.caughtUp) break;
        }
        const backlog = log.length - from;
        expect(flags, context).toEqual(Array.from({ length: backlog }, (_, i) => i === backlog - 1));
        expect(sub.nextPosition, context).toBe(log.length);
        // The callback runs after the last backlog event was handed out, when the consumer asks on.
        expect(announced, context).toEqual([]);

        const seen: StoredEvent[] = [];
        const stopping = subscribe(store, 'billing', {
          pageSize,
          types: ['Paid'],
          endWhenCaughtUp: true,
          onCaughtUp: () => announced.push(seen.length),
        });
        for await (const event of stopping) seen.push(event);
        expect(seen.map(describeEvent), context).toEqual(paid.map(describeEvent));
        expect(stopping.endReason, context).toBe('caught-up');
        expect(stopping.nextPosition, context).toBe(log.length);
        expect(announced, context).toEqual([paid.length]);
      }
    });

    it('endWhenCaughtUp with an empty backlog ends at once, and events written later are not waited for', async () => {
      const s = await subject.open();
      store = s;
      const announced: string[] = [];
      const empty = subscribe(s, 'nothing-yet', {
        endWhenCaughtUp: true,
        onCaughtUp: () => announced.push('empty'),
      });
      expect(await empty.next()).toEqual({ done: true, value: undefined });
      expect(empty.endReason).toBe('caught-up');
      expect(empty.caughtUp).toBe(true);
      expect(announced).toEqual(['empty']);

      await s.put('d', 'a', 1n, [{ type: 'A' }, { type: 'B' }]);
      const sub = subscribe(s, 'd', { endWhenCaughtUp: true });
      const first = await sub.next();
      await s.put('d', 'a', 1n, [{ type: 'C' }]);
      const second = await sub.next();
      expect([first.value?.type, second.value?.type]).toEqual(['A', 'B']);
      expect(sub.caughtUp).toBe(true);
      expect(await sub.next()).toEqual({ done: true, value: undefined });
      expect(sub.nextPosition).toBe(2);
    });

    it("fromPosition 'end' skips the backlog: only events committed after subscribe(), at any page size (seeded)", async () => {
      const seed = testSeed(4306);
      const { store, logs, random } = await prepared(seed);
      const log = logs.get('billing')!;
      const pageSize = randomInt(random, 1, 7);
      const context = `seed ${seed} pageSize ${pageSize}`;
      const announced: number[] = [];
      const sub = subscribe(store, 'billing', {
        fromPosition: 'end',
        pageSize,
        onCaughtUp: () => announced.push(sub.nextPosition),
      });
      const live = await store.put('billing', 'invoice', 1n, [{ type: 'Paid' }, { type: 'Closed' }]);
      await store.put('shipping', 'order', 1n, [{ type: 'Opened' }]);
      const seen = await take(sub, 2);
      expect(
        seen.map((e) => [e.type, e.position]),
        context,
      ).toEqual([
        ['Paid', log.length],
        ['Closed', log.length + 1],
      ]);
      expect(live.firstPosition, context).toBe(log.length);
      expect(sub.nextPosition, context).toBe(log.length + 2);
      await expectNothingMore(sub);
      // Events committed before the first read reached the end count as its backlog.
      expect(announced, context).toEqual([log.length + 2]);

      const stopping = subscribe(store, 'billing', {
        fromPosition: 'end',
        endWhenCaughtUp: true,
        types: ['Paid'],
      });
      expect(await stopping.next()).toEqual({ done: true, value: undefined });
      expect([stopping.endReason, stopping.nextPosition]).toEqual(['caught-up', log.length + 2]);
      const fresh = subscribe(store, 'nothing-yet', { fromPosition: 'end', endWhenCaughtUp: true });
      expect(await fresh.next()).toEqual({ done: true, value: undefined });
      expect(fresh.nextPosition).toBe(0);
    });

    it("fromPosition 'end': a failure to read the end rejects the first next(); a close before it ends quietly", async () => {
      store = await subject.open();
      await store.put('d', 'a', 1n, [{ type: 'A' }]);
      const failing = new InstrumentedStore(store);
      failing.read = () => Promise.reject(Object.assign(new Error('bad sector'), { code: 'CORRUPT_DATA' }));
      const sub = subscribe(failing, 'd', { fromPosition: 'end' });
      expect(sub.nextPosition).toBe(-1);
      await expect(sub.next()).rejects.toMatchObject({ code: 'CORRUPT_DATA' });
      expect(sub.endReason).toBe('error');
      expect(failing.watchers).toBe(0);
      const closed = subscribe(failing, 'd', { fromPosition: 'end' });
      await closed.close();
      expect(await closed.next()).toEqual({ done: true, value: undefined });
      expect(closed.endReason).toBe('closed');
    });

    it('resumes from nextPosition without gap or duplicate', async () => {
      const { store, logs } = await prepared(testSeed(4303));
      const log = logs.get('shipping')!;
      const seen: StoredEvent[] = [];
      let from = 0;
      for (let chunk = 1; seen.length < log.length; chunk++) {
        const sub = subscribe(store, 'shipping', { fromPosition: from, pageSize: 6 });
        seen.push(...(await take(sub, Math.min(chunk, log.length - seen.length))));
        await sub.close();
        from = sub.nextPosition;
      }
      expect(seen.map(describeEvent)).toEqual(log.map(describeEvent));
    });

    it('a slow consumer holds at most one page however far behind it falls', async () => {
      const seed = testSeed(4304);
      const random = seededRandom(seed);
      const instrumented = new InstrumentedStore(await subject.open());
      store = instrumented;
      await writeRandomLog(instrumented, random, { ...LOG_SHAPE, batches: 400, maxBatchEvents: 20 });
      const pageSize = 32;
      const sub = subscribe(instrumented, 'billing', { pageSize });
      let consumed = 0;
      let maxHeld = 0;
      let maxLag = 0;
      let written = (await instrumented.read('billing', { fromPosition: 0, limit: 100_000 })).events.length;
      instrumented.eventsRead = 0;
      while (consumed < 3_000) {
        const result = await nextWithin(sub);
        if (result.done) throw new Error('subscription ended early');
        consumed++;
        // Events the subscription has read and not yet handed out, counted outside it and inside it.
        maxHeld = Math.max(maxHeld, instrumented.eventsRead - consumed, sub.bufferedEvents);
        // The producer outpaces the consumer: ten events appended for every event consumed.
        const put = await instrumented.put('billing', 'invoice', 1n, Array(10).fill({ type: 'Opened' }));
        written = put.firstPosition + 10;
        maxLag = Math.max(maxLag, written - sub.nextPosition);
      }
      await sub.close();
      expect(maxLag, `seed ${seed}`).toBeGreaterThan(25_000);
      expect(maxHeld, `seed ${seed}`).toBeLessThanOrEqual(pageSize);
      expect(instrumented.reads).toBeLessThanOrEqual(Math.ceil(consumed / pageSize) + 2);
    });

    it('close(), return(), break and an AbortSignal end a subscription', async () => {
      const { store, logs } = await prepared(testSeed(4305));
      const length = logs.get('billing')!.length;
      const instrumented = new InstrumentedStore(store);

      const closed = subscribe(instrumented, 'billing', { pageSize: 4 });
      await take(closed, 2);
      await closed.close();
      expect(await closed.next()).toEqual({ done: true, value: undefined });
      expect(closed.endReason).toBe('closed');
      expect(closed.bufferedEvents).toBe(0);

      const live = subscribe(instrumented, 'billing', { fromPosition: length });
      const waiting = live.next();
      await turn();
      expect(live.caughtUp).toBe(true);
      await live.return();
      expect(await waiting).toEqual({ done: true, value: undefined });

      let broken = 0;
      const looped = subscribe(instrumented, 'billing');
      for await (const _ of looped) if (++broken === 3) break;
      expect(looped.endReason).toBe('closed');

      const controller = new AbortController();
      const aborted = subscribe(instrumented, 'billing', { fromPosition: length, signal: controller.signal });
      const pending = aborted.next();
      await turn();
      controller.abort();
      expect(await pending).toEqual({ done: true, value: undefined });
      expect(aborted.endReason).toBe('aborted');

      const preAborted = subscribe(instrumented, 'billing', { signal: AbortSignal.abort() });
      expect(await preAborted.next()).toEqual({ done: true, value: undefined });
      expect(instrumented.watchers).toBe(0);
    });

    it('closing the store ends every subscription, caught up or not, started or not', async () => {
      const { store, logs } = await prepared(testSeed(4306));
      const length = logs.get('billing')!.length;
      const instrumented = new InstrumentedStore(store);
      // No idle re-check within the test: only the store's close notice can end the waiting ones.
      const idleCheckMs = 2 ** 31 - 1;
      const subs = [
        subscribe(instrumented, 'billing', { fromPosition: length, idleCheckMs }),
        subscribe(instrumented, 'billing', { pageSize: 3, idleCheckMs }),
        subscribe(instrumented, 'shipping', { types: ['Closed'], idleCheckMs }),
        subscribe(instrumented, 'nothing-here', { idleCheckMs }),
        subscribe(instrumented, 'billing', { idleCheckMs }),
      ];
      const pending = subs.slice(0, 4).map((sub) => nextWithin(sub));
      await turn();
      expect(subs[0]!.caughtUp).toBe(true);
      expect(subs[3]!.caughtUp).toBe(true);
      await store.close();
      const results = await Promise.all(pending);
      // A next() already waiting for a live event ends; one that got its page before close delivers it.
      expect(results[0]).toEqual({ done: true, value: undefined });
      expect(results[3]).toEqual({ done: true, value: undefined });
      for (const sub of subs) {
        expect(await sub.next()).toEqual({ done: true, value: undefined });
        expect(sub.endReason).toBe('store-closed');
      }
      expect(instrumented.watchers).toBe(0);
    });

    it('ends on a store that sends no close notice, at the next idle re-check', async () => {
      const { store, logs } = await prepared(testSeed(4307));
      const silent = new InstrumentedStore(store, true);
      const sub = subscribe(silent, 'billing', { fromPosition: logs.get('billing')!.length, idleCheckMs: 5 });
      const pending = sub.next();
      await turn();
      await store.close();
      expect(await pending).toEqual({ done: true, value: undefined });
      expect(sub.endReason).toBe('store-closed');
      expect(silent.watchers).toBe(0);
    });

    it('rejects the pending next() with a read error, then ends', async () => {
      store = await subject.open();
      await store.put('d', 'a', 1n, [{ type: 'A' }]);
      const failing = new InstrumentedStore(store);
      failing.read = () => Promise.reject(Object.assign(new Error('bad sector'), { code: 'CORRUPT_DATA' }));
      const sub = subscribe(failing, 'd');
      await expect(sub.next()).rejects.toMatchObject({ code: 'CORRUPT_DATA' });
      expect(sub.endReason).toBe('error');
      expect(await sub.next()).toEqual({ done: true, value: undefined });
      expect(failing.watchers).toBe(0);
    });

    it('validates its options at the call', async () => {
      store = await subject.open();
      const s = store;
      const code = (f: () => unknown) => {
        try {
          f();
        } catch (err) {
          return (err as { code?: string }).code;
        }
        return 'no error';
      };
      expect(code(() => subscribe(s, 'd', { pageSize: 0 }))).toBe('INVALID_QUERY');
      expect(code(() => subscribe(s, 'd', { fromPosition: -1 }))).toBe('INVALID_QUERY');
      expect(code(() => subscribe(s, 'd', { fromPosition: 'start' as 'end' }))).toBe('INVALID_QUERY');
      expect(code(() => subscribe(s, 'd', { types: ['1x'] }))).toBe('INVALID_NAME');
      expect(code(() => subscribe(s, 'D'))).toBe('INVALID_NAME');
      expect(code(() => subscribe(s, 'd', { idleCheckMs: 0 }))).toBe('INVALID_OPTION');
      expect(code(() => subscribe(s, 'd', { signal: {} as AbortSignal }))).toBe('INVALID_OPTION');
      expect(code(() => subscribe(s, 'd', { endWhenCaughtUp: 1 as unknown as boolean }))).toBe(
        'INVALID_OPTION',
      );
      expect(code(() => subscribe(s, 'd', { onCaughtUp: 1 as unknown as () => void }))).toBe(
        'INVALID_OPTION',
      );
    });
  });
}
