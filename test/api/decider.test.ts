import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  type DecidedEvent,
  type Decider,
  type EventCodec,
  handleCommand,
  jsonCodec,
} from '../../src/api/decider.js';
import type { EventStore } from '../../src/api/event-store.js';
import type { EventInput, PutOptions } from '../../src/types.js';
import { randomInt, seededRandom, storeSubjects, testSeed, turn } from './store-subjects.js';

type CounterEvent = DecidedEvent<'Incremented', { by: number }> | DecidedEvent<'Reset', undefined>;
type CounterCommand = { kind: 'increment'; by: number } | { kind: 'reset' } | { kind: 'noop' };
interface Counter {
  value: number;
  increments: number;
}

const counter: Decider<Counter, CounterCommand, CounterEvent> = {
  initialState: () => ({ value: 0, increments: 0 }),
  evolve: (state, event) =>
    event.type === 'Incremented'
      ? { value: state.value + event.data.by, increments: state.increments + 1 }
      : { value: 0, increments: state.increments },
  decide: (command, state) => {
    if (command.kind === 'increment') return { type: 'Incremented', data: { by: command.by } };
    if (command.kind === 'reset') return state.value === 0 ? [] : [{ type: 'Reset', data: undefined }];
    return [];
  },
};

const REF = { domain: 'shop', aggregateType: 'counter', id: 7n };

/**
 * Forwards to a store; before each of the first `meddle` puts it appends a foreign event to the
 * same instance, so that put meets a VERSION_CONFLICT deterministically.
 */
function meddlingStore(inner: EventStore, meddle: number): EventStore & { puts: number } {
  const wrapper = Object.create(inner, {
    puts: { value: 0, writable: true },
    generation: { get: () => inner.generation },
  }) as EventStore & { puts: number };
  wrapper.put = async (domain, aggregateType, id, events: readonly EventInput[], options?: PutOptions) => {
    wrapper.puts++;
    if (wrapper.puts <= meddle) {
      await inner.put(domain, aggregateType, id, [{ type: 'Incremented', data: '{"by":100}' }]);
    }
    return inner.put(domain, aggregateType, id, events, options);
  };
  wrapper.get = (...args) => inner.get(...args);
  wrapper.read = (...args) => inner.read(...args);
  return wrapper;
}

for (const subject of storeSubjects) {
  afterAll(() => subject.cleanup());

  describe(`${subject.name}: decider`, () => {
    let store: EventStore | undefined;
    afterEach(async () => {
      await store?.close();
      store = undefined;
    });

    it('loads, folds, decides and appends with the loaded version', async () => {
      store = await subject.open();
      const first = await handleCommand(store, REF, { kind: 'increment', by: 2 }, counter);
      expect(first).toMatchObject({
        newState: { value: 2, increments: 1 },
        nextExpectedVersion: 1,
        attempts: 1,
      });
      expect(first.newEvents).toEqual([{ type: 'Incremented', data: { by: 2 } }]);
      expect(first.result).toMatchObject({ firstVersion: 1, lastVersion: 1 });
      const second = await handleCommand(store, REF, { kind: 'increment', by: 5 }, counter);
      expect(second.newState).toEqual({ value: 7, increments: 2 });
      expect(second.nextExpectedVersion).toBe(2);
      // The default codec stores compact UTF-8 JSON.
      const stored = await store.get(REF.domain, REF.aggregateType, REF.id);
      expect(stored.events.map((e) => new TextDecoder().decode(e.data))).toEqual(['{"by":2}', '{"by":5}']);
    });

    it('folds long histories page by page', async () => {
      store = await subject.open();
      for (let i = 0; i < 30; i++) {
        await store.put(REF.domain, REF.aggregateType, REF.id, [
          { type: 'Incremented', data: '{"by":1}' },
          { type: 'Incremented', data: '{"by":2}' },
        ]);
      }
      const result = await handleCommand(store, REF, { kind: 'increment', by: 1 }, counter, { pageSize: 7 });
      expect(result.newState).toEqual({ value: 91, increments: 61 });
      expect(result.nextExpectedVersion).toBe(61);
    });

    it('appends nothing when decide returns no events', async () => {
      const inner = await subject.open();
      store = inner;
      const counting = meddlingStore(inner, 0);
      const before = inner.generation;
      const empty = await handleCommand(counting, REF, { kind: 'reset' }, counter);
      expect(empty).toMatchObject({ newEvents: [], nextExpectedVersion: 0, result: undefined, attempts: 1 });
      await handleCommand(counting, REF, { kind: 'increment', by: 3 }, counter);
      const noop = await handleCommand(counting, REF, { kind: 'noop' }, counter);
      expect(noop).toMatchObject({ newState: { value: 3 }, nextExpectedVersion: 1, result: undefined });
      expect(counting.puts).toBe(1);
      expect(inner.generation).toBeGreaterThan(before);
      expect((await inner.get(REF.domain, REF.aggregateType, REF.id)).version).toBe(1);
    });

    it('N concurrent deciders on one instance converge to N with no lost update (seeded)', async () => {
      const seed = testSeed(4401);
      const random = seededRandom(seed);
      store = await subject.open();
      const s = store;
      const n = 24;
      // Each event records the new absolute value, so an append over a stale state would lose an
      // update visibly; decides are slow and async so commands interleave between load and append.
      type CounterSet = DecidedEvent<'CounterSet', { value: number }>;
      const slow: Decider<Counter, CounterCommand, CounterSet> = {
        initialState: counter.initialState,
        evolve: (state, event) => ({ value: event.data.value, increments: state.increments + 1 }),
        decide: async (_command, state) => {
          for (let t = randomInt(random, 0, 4); t > 0; t--) await turn();
          return { type: 'CounterSet', data: { value: state.value + 1 } };
        },
      };
      const results = await Promise.all(
        Array.from({ length: n }, () =>
          handleCommand(s, REF, { kind: 'increment', by: 1 }, slow, { maxRetries: n }),
        ),
      );
      const final = await handleCommand(s, REF, { kind: 'noop' }, { ...slow, decide: () => [] });
      expect(final.newState, `seed ${seed}`).toEqual({ value: n, increments: n });
      expect(final.nextExpectedVersion).toBe(n);
      // Each command saw a different predecessor: their resulting values are exactly 1..N.
      expect(results.map((r) => r.newState.value).sort((a, b) => a - b)).toEqual(
        Array.from({ length: n }, (_, i) => i + 1),
      );
      expect(
        results.some((r) => r.attempts > 1),
        `seed ${seed}`,
      ).toBe(true);
    });

    it('retries a bounded number of times, then surfaces VERSION_CONFLICT', async () => {
      const inner = await subject.open();
      store = inner;
      const recovers = meddlingStore(inner, 2);
      const ok = await handleCommand(recovers, REF, { kind: 'increment', by: 1 }, counter, { maxRetries: 2 });
      expect(ok).toMatchObject({ attempts: 3, newState: { value: 201 }, nextExpectedVersion: 3 });
      expect(recovers.puts).toBe(3);

      const gives = meddlingStore(inner, 10);
      const failure = handleCommand(gives, REF, { kind: 'increment', by: 1 }, counter, { maxRetries: 3 });
      await expect(failure).rejects.toMatchObject({
        code: 'VERSION_CONFLICT',
        details: { attempts: 4, actualVersion: 7 },
      });
      expect(gives.puts).toBe(4);

      const once = meddlingStore(inner, 1);
      await expect(
        handleCommand(once, REF, { kind: 'increment', by: 1 }, counter, { maxRetries: 0 }),
      ).rejects.toMatchObject({ code: 'VERSION_CONFLICT', details: { attempts: 1 } });
      // Only the meddlers' events were appended: no command's events got through a conflict.
      const { events } = await inner.get(REF.domain, REF.aggregateType, REF.id);
      expect(events.map((e) => new TextDecoder().decode(e.data))).toEqual([
        '{"by":100}',
        '{"by":100}',
        '{"by":1}',
        ...Array(5).fill('{"by":100}'),
      ]);
    });

    it('concurrent deciders without enough retries: one wins, the rest get VERSION_CONFLICT', async () => {
      store = await subject.open();
      const s = store;
      const n = 5;
      let entered = 0;
      let release: () => void = () => {};
      const allLoaded = new Promise<void>((resolve) => {
        release = resolve;
      });
      // Every command decides only after all have loaded: all hold version 0, exactly one can win.
      const gated: Decider<Counter, CounterCommand, CounterEvent> = {
        ...counter,
        decide: async (command, state) => {
          if (++entered === n) release();
          await allLoaded;
          return counter.decide(command, state);
        },
      };
      const outcomes = await Promise.allSettled(
        Array.from({ length: n }, () =>
          handleCommand(s, REF, { kind: 'increment', by: 1 }, gated, { maxRetries: 0 }),
        ),
      );
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
      const rejected = outcomes.filter((o) => o.status === 'rejected');
      expect(rejected.map((o) => (o.reason as { code: string }).code)).toEqual(
        Array(n - 1).fill('VERSION_CONFLICT'),
      );
      expect((await s.get(REF.domain, REF.aggregateType, REF.id)).version).toBe(1);
    });

    it('propagates errors from decide and appends nothing', async () => {
      store = await subject.open();
      const refusing: Decider<Counter, CounterCommand, CounterEvent> = {
        ...counter,
        decide: () => {
          throw new Error('insufficient funds');
        },
      };
      await expect(handleCommand(store, REF, { kind: 'increment', by: 1 }, refusing)).rejects.toThrow(
        'insufficient funds',
      );
      expect((await store.get(REF.domain, REF.aggregateType, REF.id)).version).toBe(0);
    });

    it('uses a pluggable codec', async () => {
      store = await subject.open();
      type Tick = DecidedEvent<'Tick', number>;
      const binary: EventCodec<Tick> = {
        encode: (event) => ({
          type: event.type,
          data: new Uint8Array(new Float64Array([event.data]).buffer),
        }),
        decode: (stored) => ({ type: 'Tick', data: new Float64Array(stored.data.slice().buffer)[0]! }),
      };
      const sum: Decider<number, number, Tick> = {
        initialState: () => 0,
        evolve: (state, event) => state + event.data,
        decide: (by) => [{ type: 'Tick', data: by }],
      };
      await handleCommand(store, REF, 0.5, sum, { codec: binary });
      const result = await handleCommand(store, REF, 0.25, sum, { codec: binary });
      expect(result.newState).toBe(0.75);
      expect((await store.get(REF.domain, REF.aggregateType, REF.id)).events[0]!.data.byteLength).toBe(8);
      await expect(handleCommand(store, REF, 1, sum)).rejects.toMatchObject({ code: 'INVALID_EVENT' });
    });

    it('validates its options and the events decide returns', async () => {
      store = await subject.open();
      const s = store;
      await expect(
        handleCommand(s, REF, { kind: 'noop' }, counter, { maxRetries: -1 }),
      ).rejects.toMatchObject({
        code: 'INVALID_OPTION',
      });
      await expect(handleCommand(s, REF, { kind: 'noop' }, counter, { pageSize: 0 })).rejects.toMatchObject({
        code: 'INVALID_QUERY',
      });
      const badType: Decider<Counter, CounterCommand, DecidedEvent> = {
        ...counter,
        evolve: (state) => state,
        decide: () => [{ type: '9 bad', data: 1 }],
      };
      await expect(handleCommand(s, REF, { kind: 'noop' }, badType)).rejects.toMatchObject({
        code: 'INVALID_NAME',
      });
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      const badData: Decider<Counter, CounterCommand, DecidedEvent> = {
        ...badType,
        decide: () => [{ type: 'Ok', data: cyclic }],
      };
      await expect(handleCommand(s, REF, { kind: 'noop' }, badData)).rejects.toMatchObject({
        code: 'INVALID_EVENT',
      });
      expect(jsonCodec.encode({ type: 'Empty', data: undefined })).toEqual({ type: 'Empty' });
    });
  });
}
