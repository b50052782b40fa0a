import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { RingStore } from '../../src/api/ring-store.js';
import { MemoryEventStore } from '../../src/model/memory-store.js';
import { StorageEngine } from '../../src/storage/storage-engine.js';
import { verifyStore } from '../../src/storage/verify.js';
import type { EventInput, PutResult } from '../../src/types.js';
import { compiledWorkerUrl } from '../../src/workers/worker-url.js';
import type { PlannedPut, PutOutcome } from '../fixtures/ring-store-plan.js';
import { mulberry32 } from '../support/prng.js';
import { expectSameContent } from '../support/store-content.js';

const SEED = Number(process.env.RINGSTORE_SEED ?? 20_261_202);
const root = mkdtempSync(join(tmpdir(), 'ringstore-backup-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface DonePut {
  domain: string;
  aggregateType: string;
  id: bigint;
  events: EventInput[];
  result: PutResult;
}

function randomEvents(random: () => number, tag: number): EventInput[] {
  return Array.from({ length: 1 + Math.floor(random() * 3) }, (_, e) => {
    const data = new Uint8Array(Math.floor(random() * (random() < 0.05 ? 3000 : 200)));
    for (let b = 0; b < data.length; b++) data[b] = (tag * 17 + e * 5 + b) & 255;
    return random() < 0.3
      ? { type: `T${e}`, data, metadata: `{"tag":${tag}}` }
      : { type: random() < 0.5 ? 'Opened' : 'Paid', data };
  });
}

/** The model replayed from the puts of generations ≤ `generation`, in each domain's position order. */
function modelAt(puts: readonly DonePut[], generation: number): MemoryEventStore {
  const model = new MemoryEventStore();
  const kept = puts
    .filter((p) => p.result.generation <= generation)
    .sort((a, b) =>
      a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : a.result.firstPosition - b.result.firstPosition,
    );
  for (const put of kept) {
    model.putSync(put.domain, put.aggregateType, put.id, put.events, undefined, {
      generation: put.result.generation,
      timestamp: put.result.timestamp,
    });
  }
  return model;
}

describe('online backup', () => {
  // 'fsync': commits overlap and a cut waits for the ones staged before it; 'none': one at a time.
  it.each(['fsync', 'none'] as const)(
    'under concurrent appends (main-thread and worker-thread producers, durability %s) equals the model replayed to its generation',
    async (durability) => {
      const seed = SEED + (durability === 'fsync' ? 0 : 1);
      const dir = join(root, `live-${durability}`);
      const store = await RingStore.open({ dir, durability, ringBytes: 1 << 20 });
      const puts: DonePut[] = [];
      let stop = false;
      const producer = async (n: number) => {
        const random = mulberry32(seed * 7 + n);
        for (let i = 0; !stop; i++) {
          const domain = ['billing', 'shop', 'crm'][Math.floor(random() * 3)]!;
          const aggregateType = random() < 0.5 ? 'invoice' : 'order';
          const id = BigInt(1 + Math.floor(random() * 30));
          const events = randomEvents(random, n * 100_000 + i);
          const result = await store.put(domain, aggregateType, id, events);
          puts.push({ domain, aggregateType, id, events, result });
        }
      };
      const producers = [0, 1, 2, 3].map(producer);
      // Two producer threads (store.producer()) put beside the main thread's producers.
      const threadPlans = [4, 5].map((n) => {
        const random = mulberry32(seed * 7 + n);
        return Array.from({ length: 300 }, (_, i): PlannedPut => {
          const domain = ['billing', 'shop', 'crm'][Math.floor(random() * 3)]!;
          return {
            domain,
            aggregateType: random() < 0.5 ? 'invoice' : 'order',
            id: BigInt(1 + Math.floor(random() * 30)),
            events: randomEvents(random, n * 100_000 + i),
            options: undefined,
          };
        });
      });
      const threads = threadPlans.map(
        (plan) =>
          new Promise<void>((resolve, reject) => {
            const worker = new Worker(
              compiledWorkerUrl('../fixtures/ring-store-producer.js', import.meta.url),
              {
                workerData: { handle: store.producer(), puts: plan, inFlight: 8 },
              },
            );
            worker.on('message', (message: { type: string; outcomes?: PutOutcome[]; message?: string }) => {
              if (message.type !== 'done') return reject(new Error(message.message));
              for (const [i, outcome] of message.outcomes!.entries()) {
                if (!outcome.ok) return reject(new Error(`thread put failed: ${outcome.code}`));
                puts.push({ ...plan[i]!, result: outcome.result });
              }
              resolve();
            });
            worker.on('error', reject);
          }),
      );
      producers.push(...threads);
      try {
        while (puts.length < 300) await new Promise((resolve) => setTimeout(resolve, 5));
        const backups = [
          join(root, `backup-${durability}-1`),
          join(root, 'nested', `backup-${durability}-2`),
        ];
        const reports = [];
        for (const to of backups) {
          reports.push(await store.backup(to));
          const before = puts.length;
          while (puts.length < before + 100) await new Promise((resolve) => setTimeout(resolve, 5));
        }
        stop = true;
        await Promise.all(producers);
        const finalGeneration = store.generation;
        for (const [i, to] of backups.entries()) {
          const report = reports[i]!;
          expect(existsSync(join(to, 'INCOMPLETE')), `seed ${seed}`).toBe(false);
          expect(report.generation, `seed ${seed}`).toBeLessThan(finalGeneration);
          const verified = verifyStore(to);
          expect(verified.problems, `seed ${seed}`).toEqual([]);
          const model = modelAt(puts, report.generation);
          const backup = StorageEngine.open(to);
          try {
            expect(backup.generation, `seed ${seed}`).toBe(report.generation);
            await expectSameContent(backup, model, `seed ${seed}, backup ${i}`);
            // The restored store takes puts where the backup ends.
            const next = await backup.put('billing', 'invoice', 1n, [{ type: 'After' }]);
            expect(next.generation).toBe(report.generation + 1);
          } finally {
            await backup.close();
          }
        }
      } finally {
        stop = true;
        await Promise.all(producers).catch(() => undefined);
        await store.close();
      }
    },
    30_000,
  );

  it('hard-links sealed segments (or copies them with link: false) and refuses a bad target', async () => {
    const dir = join(root, 'segments');
    const engine = StorageEngine.open(dir, { segmentBytes: 4096, dataExtentBytes: 4096 });
    try {
      for (let i = 0; i < 60; i++) {
        await engine.put('docs', 'page', BigInt(1 + (i % 7)), [
          { type: 'Written', data: new Uint8Array(700).fill(i) },
        ]);
      }
      const linked = await engine.backup(join(root, 'segments-linked'));
      expect(linked.linkedFiles).toBeGreaterThan(3);
      const sealed = join(root, 'segments-linked', 'docs', 'page.0');
      expect(statSync(sealed).nlink).toBe(2);
      const copied = await engine.backup(join(root, 'segments-copied'), { link: false });
      expect(copied.linkedFiles).toBe(0);
      expect(copied.copiedFiles).toBe(linked.copiedFiles + linked.linkedFiles);
      for (const to of ['segments-linked', 'segments-copied']) {
        expect(verifyStore(join(root, to)).problems).toEqual([]);
      }
      await expect(engine.backup(join(root, 'segments-linked'))).rejects.toMatchObject({
        code: 'TARGET_EXISTS',
      });
      await expect(engine.backup(join(dir, 'inside'))).rejects.toMatchObject({ code: 'INVALID_OPTION' });
      // A target the system cannot create is the caller's error, named, not a raw system error.
      const file = join(root, 'a-file');
      writeFileSync(file, 'x');
      for (const to of [join(file, 'sub'), '/proc/ringstore-backup', join(root, 'x\0y'), 5, '']) {
        await expect(engine.backup(to as string), String(to)).rejects.toMatchObject({
          code: 'INVALID_OPTION',
          details: { option: 'to' },
        });
      }
      const model = new MemoryEventStore();
      const all = await engine.read('docs', { limit: 1000 });
      for (const e of all.events) {
        model.putSync('docs', e.aggregateType, e.aggregateId, [e], undefined, {
          generation: e.generation,
          timestamp: e.timestamp,
        });
      }
      const restored = StorageEngine.open(join(root, 'segments-copied'));
      try {
        await expectSameContent(restored, model, 'copied backup');
      } finally {
        await restored.close();
      }
    } finally {
      await engine.close();
    }
  });

  it('a directory with the INCOMPLETE marker is refused by every open', async () => {
    const dir = join(root, 'incomplete');
    mkdirSync(dir);
    writeFileSync(join(dir, 'INCOMPLETE'), 'ringstore backup of /x at generation 3\n');
    expect(() => StorageEngine.open(dir)).toThrow(expect.objectContaining({ code: 'STORE_INCOMPLETE' }));
    expect(() => verifyStore(dir)).toThrow(expect.objectContaining({ code: 'STORE_INCOMPLETE' }));
    await expect(RingStore.open({ dir })).rejects.toMatchObject({ code: 'STORE_INCOMPLETE' });
  });
});
