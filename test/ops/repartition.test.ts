import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { hasCode } from '../../src/errors.js';
import { repartitionModel } from '../../src/model/memory-repartition.js';
import { MemoryEventStore } from '../../src/model/memory-store.js';
import { parseRepartitionPlan } from '../../src/model/repartition-plan.js';
import { repartitionStore } from '../../src/storage/repartition.js';
import { StorageEngine } from '../../src/storage/storage-engine.js';
import { type RecordedBatch, StorageWriter } from '../../src/storage/writer.js';
import { ManualClock } from '../support/model-check.js';
import { digestTree, expectSameContent } from '../support/store-content.js';

const SEED = Number(process.env.RINGSTORE_SEED ?? 20_261_203);
const root = mkdtempSync(join(tmpdir(), 'ringstore-repartition-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const DOMAINS = ['a', 'b', 'c', 'd'];
const TYPES = ['x', 'y', 'z'];

const putArb = fc.record({
  domain: fc.constantFrom(...DOMAINS),
  aggregateType: fc.constantFrom(...TYPES),
  id: fc.integer({ min: 1, max: 5 }),
  events: fc.array(
    fc.record({
      type: fc.constantFrom('Opened', 'Paid', 'Closed'),
      size: fc.integer({ min: 0, max: 300 }),
      metadata: fc.boolean(),
    }),
    { minLength: 1, maxLength: 3 },
  ),
  key: fc.option(fc.constantFrom('k1', 'k2', 'k3'), { nil: undefined }),
  burst: fc.boolean(),
  tick: fc.integer({ min: 0, max: 3 }),
});

const nameArb = fc.constantFrom(...DOMAINS, 'e', 'f');

/**
 * A plan over what the puts created (so that most plans apply), now and then naming something the
 * store does not hold or combining rules that conflict (those must be refused the same way).
 */
function planFor(puts: readonly PutSpec[]) {
  const domains = [...new Set(puts.map((p) => p.domain))].sort();
  const pairs = [...new Set(puts.map((p) => `${p.domain}/${p.aggregateType}`))].sort();
  const instances = [...new Set(puts.map((p) => `${p.domain}/${p.aggregateType}/${p.id}`))].sort();
  const ref = (key: string) => {
    const [domain, aggregateType, id] = key.split('/') as [string, string, string | undefined];
    return id === undefined ? { domain, aggregateType } : { domain, aggregateType, id };
  };
  const stray = fc.constantFrom('e/x', 'a/q', 'b/x/9');
  return fc.record({
    renameDomains: fc.option(
      fc
        .tuple(
          fc.subarray(domains, { maxLength: Math.min(2, domains.length) }),
          fc.array(nameArb, { minLength: 2, maxLength: 2 }),
        )
        .map(([from, to]) => Object.fromEntries(from.map((d, i) => [d, to[i]!]))),
      { nil: undefined },
    ),
    moveAggregateTypes: fc.option(
      fc
        .tuple(
          fc.subarray(pairs, { maxLength: Math.min(2, pairs.length) }),
          fc.array(nameArb, { minLength: 2, maxLength: 2 }),
        )
        .map(([moved, to]) => moved.map((key, i) => ({ ...ref(key), to: to[i]! }))),
      { nil: undefined },
    ),
    drop: fc.option(
      fc.record({
        domains: fc.subarray(domains, { maxLength: Math.min(1, domains.length) }),
        aggregateTypes: fc
          .subarray(pairs, { maxLength: Math.min(1, pairs.length) })
          .map((keys) => keys.map(ref)),
        instances: fc
          .tuple(
            fc.subarray(instances, { maxLength: Math.min(3, instances.length) }),
            fc.option(stray, { freq: 8, nil: undefined }),
          )
          .map(([keys, extra]) => [...keys, ...(extra?.split('/').length === 3 ? [extra] : [])].map(ref)),
      }),
      { nil: undefined },
    ),
  });
}

type PutSpec = typeof putArb extends fc.Arbitrary<infer T> ? T : never;

/** Writes the puts into a new source store and mirrors each into the model with its stamp. */
async function buildSource(dir: string, puts: readonly PutSpec[]): Promise<MemoryEventStore> {
  const clock = new ManualClock();
  const engine = StorageEngine.open(dir, { clock: clock.read, durability: 'write', segmentBytes: 2048 });
  const model = new MemoryEventStore();
  try {
    let pending: { put: PutSpec; result: Promise<unknown> }[] = [];
    const settle = async () => {
      for (const { put, result } of pending) {
        const events = eventsOf(put);
        const outcome = await result.then(
          (r) => r as { generation: number; timestamp: number; replayed: boolean },
          () => undefined,
        );
        if (outcome === undefined) continue;
        model.putSync(
          put.domain,
          put.aggregateType,
          BigInt(put.id),
          events,
          { idempotencyKey: put.key },
          outcome,
        );
      }
      pending = [];
    };
    for (const put of puts) {
      clock.advance(put.tick);
      pending.push({
        put,
        result: engine.put(put.domain, put.aggregateType, BigInt(put.id), eventsOf(put), {
          idempotencyKey: put.key,
        }),
      });
      if (!put.burst) await settle();
    }
    await settle();
  } finally {
    await engine.close();
  }
  return model;
}

function eventsOf(put: PutSpec) {
  return put.events.map((e, i) => ({
    type: e.type,
    data: new Uint8Array(e.size).fill((put.id * 7 + i) & 255),
    ...(e.metadata ? { metadata: `{"n":${i}}` } : {}),
  }));
}

let runs = 0;

describe('offline repartition', () => {
  it('equals the model applying the plan, for random stores and plans (seeded)', async () => {
    let applied = 0;
    await fc.assert(
      fc.asyncProperty(
        fc
          .array(putArb, { minLength: 1, maxLength: 40 })
          .chain((puts) => fc.tuple(fc.constant(puts), planFor(puts))),
        async ([puts, planJson]) => {
          const run = runs++;
          const from = join(root, `src-${run}`);
          const to = join(root, `dst-${run}`);
          const model = await buildSource(from, puts);
          const before = digestTree(from);
          let plan: ReturnType<typeof parseRepartitionPlan> | undefined;
          let expected: MemoryEventStore | undefined;
          let refusal: unknown;
          try {
            plan = parseRepartitionPlan(JSON.parse(JSON.stringify(planJson)));
            expected = await repartitionModel(model, plan);
          } catch (err) {
            refusal = err;
          }
          if (expected === undefined || plan === undefined) {
            expect(hasCode(refusal, 'INVALID_PLAN'), String(refusal)).toBe(true);
            if (plan !== undefined) {
              const parsed = plan;
              expect(() => repartitionStore(from, to, parsed)).toThrow(
                expect.objectContaining({ code: 'INVALID_PLAN' }),
              );
            }
            expect(existsSync(to)).toBe(false);
          } else {
            applied++;
            const report = repartitionStore(from, to, plan);
            expect(existsSync(join(to, 'INCOMPLETE'))).toBe(false);
            expect(report.targets.map((t) => t.domain)).toEqual(expected.domains());
            const target = StorageEngine.open(to);
            try {
              await expectSameContent(target, expected, `plan ${JSON.stringify(planJson)}`);
            } finally {
              await target.close();
            }
          }
          expect(digestTree(from)).toEqual(before);
          rmSync(from, { recursive: true, force: true });
          rmSync(to, { recursive: true, force: true });
        },
      ),
      { seed: SEED, numRuns: 40 },
    );
    // The property must mostly check plans that apply, not only refusals.
    expect(applied, `seed ${SEED}`).toBeGreaterThanOrEqual(12);
  }, 60_000);

  it('keeps idempotency keys, versions and generations; --dry-run writes nothing', async () => {
    const from = join(root, 'keys-src');
    const engine = StorageEngine.open(from);
    const first = await engine.put('shop', 'order', 7n, [{ type: 'Placed' }], { idempotencyKey: 'cmd-1' });
    await engine.put('shop', 'cart', 7n, [{ type: 'Added' }, { type: 'Added' }]);
    const second = await engine.put('shop', 'order', 7n, [{ type: 'Paid' }], { idempotencyKey: 'cmd-2' });
    await engine.close();
    const plan = parseRepartitionPlan({
      moveAggregateTypes: [{ domain: 'shop', aggregateType: 'order', to: 'orders' }],
      drop: { aggregateTypes: [{ domain: 'shop', aggregateType: 'cart' }] },
    });
    const dry = repartitionStore(from, join(root, 'keys-dry'), plan, { dryRun: true });
    expect(existsSync(join(root, 'keys-dry'))).toBe(false);
    expect(dry.targets).toEqual([
      { domain: 'orders', from: ['shop'], aggregateTypes: ['order'], batches: 2, events: 2 },
    ]);
    expect(dry.sources).toEqual([
      { domain: 'shop', batches: 3, events: 4, droppedBatches: 1, droppedEvents: 2 },
    ]);
    repartitionStore(from, join(root, 'keys-dst'), plan);
    const target = StorageEngine.open(join(root, 'keys-dst'));
    try {
      expect(target.domains()).toEqual(['orders']);
      const replay = await target.put('orders', 'order', 7n, [{ type: 'Placed' }], {
        idempotencyKey: 'cmd-1',
      });
      expect(replay).toMatchObject({
        replayed: true,
        firstVersion: 1,
        generation: first.generation,
        timestamp: first.timestamp,
        firstPosition: 0,
      });
      const { version, events } = await target.get('orders', 'order', 7n);
      expect(version).toBe(2);
      expect(events.map((e) => [e.type, e.generation])).toEqual([
        ['Placed', first.generation],
        ['Paid', second.generation],
      ]);
    } finally {
      await target.close();
    }
  });

  it('StorageWriter.appendRecorded keeps the given generations and refuses one that goes back in a domain', () => {
    const dir = join(root, 'recorded');
    const writer = StorageWriter.open(dir);
    const batch = (domain: string, generation: number, timestamp: number): RecordedBatch => ({
      domain,
      aggregateType: 't',
      aggregateId: 1n,
      expectedVersion: 'any',
      idempotencyKey: undefined,
      events: [{ type: 'E', data: new Uint8Array(0), metadata: new Uint8Array(0), crc: 0 }],
      generation,
      timestamp,
    });
    try {
      const report = writer.appendRecorded(
        [batch('a', 5, 100), batch('b', 2, 50), batch('a', 9, 100)],
        'write',
      );
      expect(report.outcomes.map((o) => o.ok && [o.result.generation, o.result.timestamp])).toEqual([
        [5, 100],
        [2, 50],
        [9, 100],
      ]);
      expect(writer.generation).toBe(9);
      expect(() => writer.appendRecorded([batch('a', 8, 100)], 'write')).toThrow(
        expect.objectContaining({ code: 'INTERNAL' }),
      );
      expect(() => writer.appendRecorded([batch('b', 3, 49)], 'write')).toThrow(
        expect.objectContaining({ code: 'INTERNAL' }),
      );
      // Nothing of a refused call was written: the next batch of b follows its last one.
      const next = writer.appendRecorded([batch('b', 3, 50)], 'write');
      expect(next.outcomes[0]).toMatchObject({
        ok: true,
        result: { firstVersion: 2, firstPosition: 1, generation: 3 },
      });
    } finally {
      writer.close();
    }
  });

  it('refuses a held source, an existing target, and a bad plan', async () => {
    const from = join(root, 'held-src');
    const engine = StorageEngine.open(from);
    await engine.put('shop', 'order', 1n, [{ type: 'Placed' }]);
    const empty = parseRepartitionPlan({});
    expect(() => repartitionStore(from, join(root, 'held-dst'), empty)).toThrow(
      expect.objectContaining({ code: 'STORE_LOCKED' }),
    );
    await engine.close();
    expect(existsSync(join(root, 'held-dst'))).toBe(false);
    expect(() => repartitionStore(from, root, empty)).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION' }),
    );
    expect(() => repartitionStore(from, join(root, 'keys-src'), empty)).toThrow(
      expect.objectContaining({ code: 'TARGET_EXISTS' }),
    );
    for (const bad of [
      [],
      { rename: {} },
      { renameDomains: { shop: 'shop' } },
      { renameDomains: { shop: 'Bad Name' } },
      { moveAggregateTypes: [{ domain: 'shop', aggregateType: 'order' }] },
      { drop: { instances: [{ domain: 'shop', aggregateType: 'order', id: '0' }] } },
    ]) {
      expect(() => parseRepartitionPlan(bad), JSON.stringify(bad)).toThrow(
        expect.objectContaining({ code: 'INVALID_PLAN' }),
      );
    }
    for (const bad of [
      { drop: { domains: ['nope'] } },
      { drop: { instances: [{ domain: 'shop', aggregateType: 'order', id: '2' }] } },
      { moveAggregateTypes: [{ domain: 'shop', aggregateType: 'order', to: 'shop' }] },
    ]) {
      expect(
        () => repartitionStore(from, join(root, 'bad-dst'), parseRepartitionPlan(bad)),
        JSON.stringify(bad),
      ).toThrow(expect.objectContaining({ code: 'INVALID_PLAN' }));
      expect(existsSync(join(root, 'bad-dst'))).toBe(false);
    }
  });
});
