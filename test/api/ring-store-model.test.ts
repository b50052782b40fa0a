import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/api/event-store.js';
import { RingStore } from '../../src/api/ring-store.js';
import { MemoryEventStore } from '../../src/model/memory-store.js';
import type { StoredEvent } from '../../src/types.js';
import { compiledWorkerUrl } from '../../src/workers/worker-url.js';
import type { PlannedPut, PutOutcome } from '../fixtures/ring-store-plan.js';
import { runModelCheck } from '../support/model-check.js';
import { mulberry32 } from '../support/prng.js';

const SEED = Number(process.env.RINGSTORE_SEED ?? 20_261_124);
const root = mkdtempSync(join(tmpdir(), 'ringstore-model-ring-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let runs = 0;

describe('RingStore equals MemoryEventStore (model-based, seeded, real threads)', () => {
  for (const crc of ['pool', 'inline'] as const) {
    it(`sequential operations, crc ${crc}`, async () => {
      let dir = '';
      // Tiny index settings on one of the two runs: checkpoints, run merges, instance-cache
      // evictions and index-cache misses happen all through it, before and after reopens.
      const index =
        crc === 'pool'
          ? { checkpointIndexBytes: 256, runFanIn: 2, instanceCacheSize: 2, indexCacheBytes: 4096 }
          : {};
      const open = (at: string) =>
        RingStore.open({ dir: at, crc, durability: 'write', ringBytes: 1 << 20, ...index });
      await runModelCheck(
        async () => {
          dir = join(root, `seq-${runs++}`);
          return open(dir);
        },
        async (store: EventStore) => {
          await store.close();
          return open(dir);
        },
        { seed: SEED + (crc === 'pool' ? 10 : 11), numRuns: 6 },
      );
    });
  }
});

function plan(random: () => number, producer: number, count: number): PlannedPut[] {
  const puts: PlannedPut[] = [];
  for (let i = 0; i < count; i++) {
    const events = Array.from({ length: 1 + Math.floor(random() * 4) }, (_, e) => {
      const data = new Uint8Array(Math.floor(random() * (random() < 0.05 ? 5000 : 120)));
      for (let b = 0; b < data.length; b++) data[b] = (producer * 31 + i * 7 + e + b) & 255;
      const type = ['A', 'B', 'C'][Math.floor(random() * 3)]!;
      // Metadata: absent, JSON text (a string), or binary bytes, sometimes past the zlib threshold.
      const kind = random();
      if (kind < 0.4) return { type, data };
      if (kind < 0.7) return { type, data, metadata: `{"correlationId":"p${producer}-${i}","eventId":${e}}` };
      const metadata = new Uint8Array(Math.floor(random() * (random() < 0.1 ? 1000 : 40)));
      for (let b = 0; b < metadata.length; b++) metadata[b] = (producer + i * 13 + e * 5 + b * 3) & 255;
      return { type, data, metadata };
    });
    const r = random();
    const options =
      r < 0.15
        ? { idempotencyKey: `k${Math.floor(random() * 6)}` }
        : r < 0.3
          ? { expectedVersion: Math.floor(random() * 8) }
          : r < 0.35
            ? { expectedVersion: 'exists' as const }
            : undefined;
    puts.push({
      domain: random() < 0.7 ? 'shared' : `own${producer}`,
      aggregateType: random() < 0.5 ? 'a' : 'b',
      id: BigInt(1 + Math.floor(random() * 5)),
      events,
      options,
    });
  }
  return puts;
}

function comparable(events: readonly StoredEvent[]): unknown[] {
  return events.map((e) => [
    e.domain,
    e.aggregateType,
    String(e.aggregateId),
    e.version,
    e.position,
    e.generation,
    e.timestamp,
    e.type,
    e.crc,
    Buffer.from(e.data).toString('hex'),
    Buffer.from(e.metadata).toString('hex'),
  ]);
}

async function runProducers(
  store: RingStore,
  plans: PlannedPut[][],
  inFlight: number,
): Promise<PutOutcome[][]> {
  return Promise.all(
    plans.map(
      (puts) =>
        new Promise<PutOutcome[]>((resolve, reject) => {
          const worker = new Worker(
            compiledWorkerUrl('../fixtures/ring-store-producer.js', import.meta.url),
            {
              workerData: { handle: store.producer(), puts, inFlight },
            },
          );
          worker.on('message', (message: { type: string; outcomes?: PutOutcome[]; message?: string }) => {
            if (message.type === 'done') resolve(message.outcomes!);
            else reject(new Error(message.message));
          });
          worker.on('error', reject);
        }),
    ),
  );
}

async function runMain(store: RingStore, puts: PlannedPut[]): Promise<PutOutcome[]> {
  return Promise.all(
    puts.map((put) =>
      store.put(put.domain, put.aggregateType, put.id, put.events, put.options).then(
        (result): PutOutcome => ({ ok: true, result }),
        (error: { code: string; details: Record<string, unknown> }): PutOutcome => ({
          ok: false,
          code: error.code,
          details: error.details,
        }),
      ),
    ),
  );
}

describe('RingStore with concurrent producers (main thread + worker threads)', () => {
  for (const crc of ['pool', 'inline'] as const) {
    it(`agrees with the model replayed in commit order, crc ${crc}`, async () => {
      const seed = SEED + (crc === 'pool' ? 20 : 21);
      const random = mulberry32(seed);
      const dir = join(root, `concurrent-${crc}`);
      let store = await RingStore.open({ dir, crc, durability: 'none', ringBytes: 64 * 1024, crcThreads: 2 });
      const plans = Array.from({ length: 4 }, (_, p) => plan(random, p, 300));
      const [mainOutcomes, workerOutcomes] = await Promise.all([
        runMain(store, plans[0]!),
        runProducers(store, plans.slice(1), 16),
      ]);
      const outcomes = [mainOutcomes, ...workerOutcomes];
      // Worker-thread puts resolve on commit, before this thread applied the commit to its reader.
      await store.sync();

      // Replay every appended batch into the model in commit order, stamped with the real
      // generation and timestamp: the model must assign the very same versions and positions.
      const appended: { put: PlannedPut; result: Extract<PutOutcome, { ok: true }>['result'] }[] = [];
      const firstResultByKey = new Map<string, unknown>();
      for (const [p, list] of outcomes.entries()) {
        for (const [i, outcome] of list.entries()) {
          const put = plans[p]![i]!;
          if (!outcome.ok) {
            try {
              expect(['VERSION_CONFLICT']).toContain(outcome.code);
            } catch (error) {
              console.error(`seed ${seed}: unexpected ${outcome.code}`);
              throw error;
            }
            continue;
          }
          if (!outcome.result.replayed) appended.push({ put, result: outcome.result });
        }
      }
      appended.sort(
        (x, y) =>
          x.result.generation - y.result.generation ||
          x.put.domain.localeCompare(y.put.domain) ||
          x.result.firstPosition - y.result.firstPosition,
      );
      const model = new MemoryEventStore();
      for (const { put, result } of appended) {
        const replay = model.putSync(
          put.domain,
          put.aggregateType,
          put.id,
          put.events,
          { idempotencyKey: put.options?.idempotencyKey },
          { generation: result.generation, timestamp: result.timestamp },
        );
        expect({ ...replay, durability: result.durability }, `seed ${seed}`).toEqual(result);
        if (put.options?.idempotencyKey) {
          firstResultByKey.set(
            `${put.domain}/${put.aggregateType}/${put.id}/${put.options.idempotencyKey}`,
            result,
          );
        }
      }
      for (const [p, list] of outcomes.entries()) {
        for (const [i, outcome] of list.entries()) {
          const put = plans[p]![i]!;
          if (!outcome.ok || !outcome.result.replayed) continue;
          const first = firstResultByKey.get(
            `${put.domain}/${put.aggregateType}/${put.id}/${put.options?.idempotencyKey}`,
          );
          expect(first, `seed ${seed}`).toMatchObject({
            firstVersion: outcome.result.firstVersion,
            firstPosition: outcome.result.firstPosition,
          });
        }
      }

      for (let pass = 0; pass < 2; pass++) {
        expect(store.domains()).toEqual(model.domains());
        for (const domain of model.domains()) {
          const real = await store.read(domain, { limit: 100_000, verifyCrc: true });
          const expected = await model.read(domain, { limit: 100_000 });
          expect(comparable(real.events), `seed ${seed}`).toEqual(comparable(expected.events));
          for (const aggregateType of ['a', 'b']) {
            for (let id = 1n; id <= 5n; id++) {
              const got = await store.get(domain, aggregateType, id);
              expect(comparable(got.events)).toEqual(
                comparable((await model.get(domain, aggregateType, id)).events),
              );
            }
          }
        }
        await store.close();
        if (pass === 0) store = await RingStore.open({ dir, crc });
      }
      console.log(`concurrent model check (crc ${crc}): seed ${seed}, ${appended.length} batches appended`);
    });
  }
});
