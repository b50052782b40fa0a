import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Ring } from '../../src/pipeline/ring.js';
import { CONTROL } from '../../src/pipeline/ring-layout.js';
import { compiledWorkerUrl } from '../../src/workers/worker-url.js';

/**
 * Must show (issue 3): 1–8 producer threads, random batch sizes, a ring small enough to wrap
 * thousands of times, counters started near 2^31 and near the 2^32 wrap. Every batch is delivered
 * exactly once, each producer's order is kept, the ring never holds more than its capacity.
 * Producers are the real Producer in worker threads; the consumer is the real WriterLoop.
 */
const SEED = Number(process.env.RING_STRESS_SEED ?? 0x5eed_0003);

interface Summary {
  end: string;
  delivered: number;
  perProducer: number[];
  problems: string[];
  maxUsed: number;
  laps: number;
}

function onMessage<T>(worker: Worker, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    worker.on('message', (message: { type: string; message?: string }) => {
      if (message.type === type) resolve(message as T);
      else if (message.type === 'error') reject(new Error(message.message));
    });
    worker.on('error', reject);
  });
}

async function stressRun(config: {
  producers: number;
  ringBytes: number;
  startCursor: number;
  batchesPerProducer: number;
  maxEventBytes: number;
  maxEvents: number;
  maxInFlight: number;
  handoffBytes: number;
  overlap: boolean;
  idleWait: 'blocking' | 'spin-then-block';
  seed: number;
}): Promise<Summary> {
  const ring = Ring.create(config.ringBytes, config.startCursor);
  const shape = { seed: config.seed, maxEventBytes: config.maxEventBytes, maxEvents: config.maxEvents };
  const writer = new Worker(compiledWorkerUrl('../fixtures/ring-stress-writer.js', import.meta.url), {
    workerData: {
      sab: ring.sab,
      producers: config.producers,
      overlap: config.overlap,
      idleWait: config.idleWait,
      ...shape,
    },
  });
  const summary = onMessage<Summary>(writer, 'summary');
  const producers = Array.from(
    { length: config.producers },
    (_, producerId) =>
      new Worker(compiledWorkerUrl('../fixtures/ring-stress-producer.js', import.meta.url), {
        workerData: {
          sab: ring.sab,
          producerId,
          batches: config.batchesPerProducer,
          maxInFlight: config.maxInFlight,
          handoffBytes: config.handoffBytes,
          ...shape,
        },
      }),
  );
  try {
    await Promise.all(producers.map((p) => onMessage(p, 'done')));
  } finally {
    Atomics.store(ring.words, CONTROL.writerStop, 1);
    ring.wakeEveryone();
    await Promise.all(producers.map((p) => p.terminate()));
  }
  const result = await summary;
  await writer.terminate();
  return result;
}

describe('ring stress with producer threads (seeded, property-based)', () => {
  it('delivers every batch exactly once, in producer order, within capacity, across thousands of laps', async () => {
    let runs = 0;
    let totalLaps = 0;
    const modes = new Set<boolean>();
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          producers: fc.integer({ min: 1, max: 8 }),
          ringBytes: fc.constantFrom(1024, 2048),
          startCursor: fc.constantFrom(0x7fff_f000, 0x7fff_ffc0, 0xffff_f000 | 0, -64, 0),
          maxEventBytes: fc.integer({ min: 0, max: 60 }),
          maxEvents: fc.integer({ min: 1, max: 5 }),
          maxInFlight: fc.integer({ min: 1, max: 32 }),
          handoffBytes: fc.constantFrom(0, 128, 512),
          idleWait: fc.constantFrom('blocking' as const, 'spin-then-block' as const),
          seed: fc.integer({ min: 0, max: 0x7fffffff }),
        }),
        async (config) => {
          // Enough batches for ~1500 laps: estimated record size is the header, names and the
          // average events (data lengths are uniform in 0…maxEventBytes).
          const averageEvents = (1 + config.maxEvents) / 2;
          const averageRecord = 124 + averageEvents * (8 + config.maxEventBytes / 2);
          const batches = Math.ceil((1500 * config.ringBytes) / averageRecord);
          const batchesPerProducer = Math.ceil(batches / config.producers);
          // Every other run uses the writer loop's overlapped commit path.
          const overlap = runs % 2 === 1;
          const summary = await stressRun({ ...config, overlap, batchesPerProducer });
          runs++;
          modes.add(overlap);
          totalLaps += summary.laps;
          expect(summary.problems).toEqual([]);
          expect(summary.end).toBe('stopped');
          expect(summary.perProducer).toEqual(new Array(config.producers).fill(batchesPerProducer));
          expect(summary.delivered).toBe(batchesPerProducer * config.producers);
          expect(summary.maxUsed).toBeLessThanOrEqual(config.ringBytes);
          expect(summary.laps).toBeGreaterThan(1000);
        },
      ),
      { seed: SEED, numRuns: 8, endOnFailure: true },
    );
    console.log(`ring stress: seed ${SEED}, ${runs} runs, ${Math.round(totalLaps)} laps in total`);
    // Both the synchronous and the overlapped commit path of the writer loop ran.
    expect(modes.size).toBe(2);
  });
});
