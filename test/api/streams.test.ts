import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/api/event-store.js';
import { Domain } from '../../src/api/facade.js';
import { instanceStream, type ReadStreamOptions, readStream } from '../../src/api/streams.js';
import type { StoredEvent } from '../../src/types.js';
import {
  collect,
  describeEvent,
  randomInt,
  seededRandom,
  steppingClock,
  storeSubjects,
  testSeed,
  turn,
  writeRandomLog,
} from './store-subjects.js';

const EVENT_TYPES = ['Opened', 'Paid', 'Shipped', 'Closed'] as const;
const LOG_SHAPE = {
  domains: ['billing', 'shipping'],
  aggregateTypes: ['invoice', 'order', 'parcel'],
  eventTypes: EVENT_TYPES,
  instancesPerType: 12,
  batches: 400,
  maxBatchEvents: 6,
};

async function expectCode(action: () => unknown, code: string): Promise<void> {
  try {
    await action();
  } catch (err) {
    expect((err as { code?: string }).code).toBe(code);
    return;
  }
  throw new Error(`expected a ${code} error`);
}

/** What readStream must yield for `options`, computed from the full log by plain filtering. */
function expectedRead(log: readonly StoredEvent[], options: ReadStreamOptions): StoredEvent[] {
  const types = options.types ? new Set(options.types) : undefined;
  const matching = log.filter(
    (e) =>
      e.position >= (options.fromPosition ?? 0) &&
      e.position <= (options.toPosition ?? Number.POSITIVE_INFINITY) &&
      (!types || types.has(e.type)) &&
      e.timestamp >= (options.fromTime ?? Number.NEGATIVE_INFINITY) &&
      e.timestamp <= (options.toTime ?? Number.POSITIVE_INFINITY),
  );
  return matching.slice(0, options.limit ?? matching.length);
}

function randomReadOptions(random: () => number, log: readonly StoredEvent[]): ReadStreamOptions {
  const options: ReadStreamOptions = { pageSize: randomInt(random, 1, 300) };
  const last = log.length - 1;
  if (random() < 0.5) options.fromPosition = randomInt(random, 0, last + 3);
  if (random() < 0.4) options.toPosition = randomInt(random, options.fromPosition ?? 0, last + 3);
  if (random() < 0.4) options.limit = randomInt(random, 0, 400);
  if (random() < 0.5) options.types = EVENT_TYPES.filter(() => random() < 0.4);
  const first = log[0]!.timestamp;
  const span = log[last]!.timestamp - first;
  if (random() < 0.4) options.fromTime = first + randomInt(random, -1, span + 1);
  if (random() < 0.4) options.toTime = first + randomInt(random, -1, span + 1);
  return options;
}

for (const subject of storeSubjects) {
  afterAll(() => subject.cleanup());

  describe(`${subject.name}: streaming reads`, () => {
    let store: EventStore | undefined;
    afterEach(async () => {
      await store?.close();
      store = undefined;
    });

    async function prepared(seed: number): Promise<{ store: EventStore; logs: Map<string, StoredEvent[]> }> {
      const random = seededRandom(seed);
      store = await subject.open({ clock: steppingClock(random) });
      const logs = await writeRandomLog(store, random, LOG_SHAPE);
      return { store, logs };
    }

    it('streams every domain page by page exactly as the puts wrote it', async () => {
      const seed = testSeed(4101);
      const { store, logs } = await prepared(seed);
      for (const [domain, log] of logs) {
        const stream = readStream(store, domain, { pageSize: 97 });
        expect(stream.generation, `seed ${seed}`).toBe(store.generation);
        const events = await collect(stream);
        expect(events.map(describeEvent), `seed ${seed}`).toEqual(log.map(describeEvent));
        expect(stream.nextPosition).toBe(log.length);
      }
    });

    it('hands out the metadata of each event, in domain and instance streams', async () => {
      store = await subject.open();
      const metadata = ['{"correlationId":"c-1"}', new Uint8Array([0, 255, 3]), undefined];
      await store.put('billing', 'invoice', 1n, [
        { type: 'Opened', data: 'a', metadata: metadata[0] },
        { type: 'Paid', data: 'b', metadata: metadata[1] },
        { type: 'Closed', data: 'c' },
      ]);
      const expected = ['7b22636f7272656c6174696f6e4964223a22632d31227d', '00ff03', ''];
      const hex = (events: StoredEvent[]) => events.map((e) => Buffer.from(e.metadata).toString('hex'));
      expect(hex(await collect(readStream(store, 'billing', { pageSize: 2 })))).toEqual(expected);
      expect(hex(await collect(instanceStream(store, 'billing', 'invoice', 1n, { pageSize: 2 })))).toEqual(
        expected,
      );
    });

    it('combines position, type, time and limit bounds like a filter over the log (seeded)', async () => {
      const seed = testSeed(4102);
      const { store, logs } = await prepared(seed);
      const random = seededRandom(seed + 1);
      const log = logs.get('billing')!;
      for (let round = 0; round < 120; round++) {
        const options = randomReadOptions(random, log);
        const context = `seed ${seed} round ${round} ${JSON.stringify(options)}`;
        const stream = readStream(store, 'billing', options);
        const events = await collect(stream);
        const expected = expectedRead(log, options);
        expect(events.map(describeEvent), context).toEqual(expected.map(describeEvent));
        // nextPosition continues the stream: the rest of the same query, no gap, no duplicate.
        const rest = await collect(
          readStream(store, 'billing', { ...options, fromPosition: stream.nextPosition, limit: undefined }),
        );
        const all = expectedRead(log, { ...options, limit: undefined });
        expect([...events, ...rest].map(describeEvent), context).toEqual(all.map(describeEvent));
      }
    });

    it('pins a stream to the generation it started at, or reads live when asked', async () => {
      const { store, logs } = await prepared(testSeed(4103));
      const before = logs.get('billing')!.length;
      const pinned = readStream(store, 'billing', { pageSize: 10 });
      const live = readStream(store, 'billing', { pageSize: 10, atGeneration: 'live' });
      expect(live.generation).toBeUndefined();
      const first = await pinned.next();
      await live.next();
      for (let i = 0; i < 30; i++) await store.put('billing', 'invoice', 999n, [{ type: 'Paid' }]);
      const restPinned = await collect(pinned);
      const restLive = await collect(live);
      expect(1 + restPinned.length).toBe(before);
      expect(first.value?.position).toBe(0);
      expect(restPinned.every((e) => e.generation <= pinned.generation!)).toBe(true);
      expect(1 + restLive.length).toBe(before + 30);
      expect(pinned.nextPosition).toBe(before);
      expect(live.nextPosition).toBe(before + 30);
    });

    it('ends early on return() and resumes after the last event handed out', async () => {
      const { store, logs } = await prepared(testSeed(4104));
      const log = logs.get('shipping')!;
      const stream = readStream(store, 'shipping', { pageSize: 50, types: ['Paid'] });
      const taken: StoredEvent[] = [];
      for await (const event of stream) {
        taken.push(event);
        if (taken.length === 7) break;
      }
      expect(await stream.next()).toEqual({ done: true, value: undefined });
      expect(stream.nextPosition).toBe(taken.at(-1)!.position + 1);
      const rest = await collect(
        readStream(store, 'shipping', { types: ['Paid'], fromPosition: stream.nextPosition }),
      );
      expect([...taken, ...rest].map(describeEvent)).toEqual(
        log.filter((e) => e.type === 'Paid').map(describeEvent),
      );
    });

    it('streams an instance by version range, pinned, in pages (seeded)', async () => {
      const seed = testSeed(4105);
      const { store, logs } = await prepared(seed);
      const random = seededRandom(seed + 1);
      const all = [...logs.values()].flat();
      for (let round = 0; round < 60; round++) {
        const sample = all[randomInt(random, 0, all.length - 1)]!;
        const history = all.filter(
          (e) =>
            e.domain === sample.domain &&
            e.aggregateType === sample.aggregateType &&
            e.aggregateId === sample.aggregateId,
        );
        const fromVersion = random() < 0.5 ? randomInt(random, 0, history.length + 2) : undefined;
        const toVersion = random() < 0.5 ? randomInt(random, 0, history.length + 2) : undefined;
        const limit = random() < 0.3 ? randomInt(random, 0, history.length) : undefined;
        const pageSize = randomInt(random, 1, 20);
        const options = { fromVersion, toVersion, limit, pageSize };
        const stream = instanceStream(
          store,
          sample.domain,
          sample.aggregateType,
          sample.aggregateId,
          options,
        );
        const events = await collect(stream);
        const expected = history
          .filter(
            (e) => e.version >= (fromVersion ?? 1) && e.version <= (toVersion ?? Number.MAX_SAFE_INTEGER),
          )
          .slice(0, limit ?? history.length);
        const context = `seed ${seed} round ${round} ${JSON.stringify(options)}`;
        expect(events.map(describeEvent), context).toEqual(expected.map(describeEvent));
        expect(stream.lastVersion, context).toBe(
          expected.at(-1)?.version ?? Math.max(1, fromVersion ?? 1) - 1,
        );
      }
    });

    it('pins an instance stream: events appended while it runs are not seen', async () => {
      store = await subject.open();
      for (let i = 0; i < 25; i++) await store.put('d', 'counter', 1n, [{ type: 'Added', data: `${i}` }]);
      const stream = instanceStream(store, 'd', 'counter', 1n, { pageSize: 4 });
      const seen: number[] = [];
      for await (const event of stream) {
        seen.push(event.version);
        // Bounded, so an unpinned stream fails the assertion below instead of chasing the head forever.
        if (seen.length === 60) break;
        await store.put('d', 'counter', 1n, [{ type: 'Added' }]);
      }
      expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
      expect(stream.instanceVersion).toBe(25);
      expect((await store.get('d', 'counter', 1n)).version).toBe(50);
    });

    it('is reachable from the navigational facade: domain.stream/subscribe, instance.stream', async () => {
      const { store, logs } = await prepared(testSeed(4106));
      const billing = new Domain(store, 'billing');
      const log = logs.get('billing')!;
      expect((await collect(billing.stream({ types: ['Paid'] }))).map(describeEvent)).toEqual(
        log.filter((e) => e.type === 'Paid').map(describeEvent),
      );
      const sub = billing.subscribe({ fromPosition: log.length - 3 });
      const tail: StoredEvent[] = [];
      for await (const event of sub) if (tail.push(event) === 3) break;
      expect(tail.map(describeEvent)).toEqual(log.slice(-3).map(describeEvent));
      const first = log[0]!;
      const history = log.filter(
        (e) => e.aggregateType === first.aggregateType && e.aggregateId === first.aggregateId,
      );
      const instance = billing.aggregate(first.aggregateType).instance(first.aggregateId);
      expect((await collect(instance.stream({ pageSize: 2 }))).map(describeEvent)).toEqual(
        history.map(describeEvent),
      );
    });

    it('validates options when the stream is created', async () => {
      store = await subject.open();
      const s = store;
      await expectCode(() => readStream(s, 'd', { pageSize: 0 }), 'INVALID_QUERY');
      await expectCode(() => readStream(s, 'd', { pageSize: 100_001 }), 'INVALID_QUERY');
      await expectCode(() => readStream(s, 'd', { toPosition: -1 }), 'INVALID_QUERY');
      await expectCode(() => readStream(s, 'd', { limit: 1.5 }), 'INVALID_QUERY');
      await expectCode(() => readStream(s, 'd', { fromTime: -5 }), 'INVALID_QUERY');
      await expectCode(() => readStream(s, 'd', { atGeneration: 'x' as unknown as number }), 'INVALID_QUERY');
      await expectCode(() => readStream(s, 'd', { types: ['9bad'] }), 'INVALID_NAME');
      await expectCode(() => readStream(s, 'Bad'), 'INVALID_NAME');
      await expectCode(() => instanceStream(s, 'd', 'a', 0n), 'INVALID_ID');
      await expectCode(() => instanceStream(s, 'd', 'a', 1n, { fromVersion: -1 }), 'INVALID_QUERY');
      await expectCode(() => instanceStream(s, 'd', 'a', 1n, { pageSize: 0 }), 'INVALID_QUERY');
    });

    it('rejects next() with a read error and then ends', async () => {
      store = await subject.open();
      await store.put('d', 'a', 1n, [{ type: 'A' }, { type: 'B' }]);
      const inner = store;
      const failing: EventStore = Object.create(inner, {
        read: { value: () => Promise.reject(Object.assign(new Error('disk'), { code: 'CORRUPT_DATA' })) },
        generation: { get: () => inner.generation },
      });
      const stream = readStream(failing, 'd');
      await expectCode(() => stream.next(), 'CORRUPT_DATA');
      expect(await stream.next()).toEqual({ done: true, value: undefined });
    });
  });

  describe(`${subject.name}: consistent cuts`, () => {
    let store: EventStore | undefined;
    afterEach(async () => {
      await store?.close();
      store = undefined;
    });

    /** Everything a reader pinned to `generation` sees, across both domains and every instance. */
    async function snapshot(
      s: EventStore,
      generation: number,
      instances: readonly string[],
    ): Promise<string[]> {
      const seen: string[] = [];
      for (const domain of LOG_SHAPE.domains) {
        for await (const e of readStream(s, domain, { atGeneration: generation, pageSize: 64 })) {
          seen.push(`read ${describeEvent(e)}`);
        }
      }
      for (const key of instances) {
        const [domain, aggregateType, id] = key.split('/') as [string, string, string];
        const stream = instanceStream(s, domain, aggregateType, BigInt(id), {
          atGeneration: generation,
          pageSize: 8,
        });
        for await (const e of stream) seen.push(`get ${describeEvent(e)}`);
        seen.push(`version ${key} ${stream.instanceVersion}`);
      }
      return seen;
    }

    it('a reader pinned to generation G sees the same cut while writers continue (seeded)', async () => {
      const seed = testSeed(4201);
      const random = seededRandom(seed);
      store = await subject.open({ clock: steppingClock(random) });
      const s = store;
      await writeRandomLog(s, random, { ...LOG_SHAPE, batches: 150 });
      const instances = LOG_SHAPE.domains.flatMap((d) =>
        LOG_SHAPE.aggregateTypes.flatMap((t) =>
          Array.from({ length: LOG_SHAPE.instancesPerType }, (_, i) => `${d}/${t}/${i + 1}`),
        ),
      );
      const cuts = [s.generation];
      const views = [await snapshot(s, s.generation, instances)];
      let writing = true;
      // Three writers in parallel, so a store that group-commits packs batches of several
      // instances and domains into one generation: a cut must take all of them or none.
      const writers = Array.from({ length: 3 }, async (_, w) => {
        const writerRandom = seededRandom(seed + 1 + w);
        for (let batch = 0; batch < 50; batch++) {
          await writeRandomLog(s, writerRandom, { ...LOG_SHAPE, batches: 1 });
          if (w === 0 && batch % 16 === 15) cuts.push(s.generation);
          if (writerRandom() < 0.5) await turn();
        }
      });
      const writer = Promise.all(writers).then(() => {
        writing = false;
      });
      let rounds = 0;
      while (writing) {
        for (const [i, cut] of cuts.entries()) {
          if (views[i] === undefined) views[i] = await snapshot(s, cut, instances);
          else expect(await snapshot(s, cut, instances), `seed ${seed} cut ${cut}`).toEqual(views[i]);
        }
        rounds++;
        await turn();
      }
      await writer;
      expect(rounds).toBeGreaterThan(1);
      expect(cuts.length).toBe(4);
      // Each cut is exactly the events of generations <= G, in both domains and every instance.
      const final = new Map<string, StoredEvent[]>();
      for (const domain of LOG_SHAPE.domains) final.set(domain, await collect(readStream(s, domain)));
      for (const [i, cut] of cuts.entries()) {
        const view = views[i] ?? (await snapshot(s, cut, instances));
        const reads = view.filter((line) => line.startsWith('read '));
        const expected = LOG_SHAPE.domains.flatMap((d) =>
          final
            .get(d)!
            .filter((e) => e.generation <= cut)
            .map((e) => `read ${describeEvent(e)}`),
        );
        expect(reads, `seed ${seed} cut ${cut}`).toEqual(expected);
        const gets = view.filter((line) => line.startsWith('get ')).map((line) => line.slice(4));
        expect([...gets].sort(), `seed ${seed} cut ${cut}`).toEqual(
          reads.map((line) => line.slice(5)).sort(),
        );
      }
    });
  });
}
