import { RingStore } from '../../src/index.js';
import { readInstances, scanTime, scanType } from '../cases/api-reads.js';
import type { LmdbReader } from '../cases/lmdb.js';
import { nowSeconds, peakRssMb, type ReadPass } from '../measure.js';

/**
 * The read-back case's reads, in a fresh process: ringstore (RingStore.get / read) and lmdb
 * (LmdbReader over the timed layout) opened here, then either one pass of each measure right after
 * open ('cold': the process, its caches and its JIT are new; the OS page cache is not) or a
 * warm-up pass and `rounds` passes alternating the systems ('warm').
 */
export type ReadbackSystem = 'ringstore' | 'lmdb';
export type ReadbackMeasure = 'readback' | 'type scan' | 'time scan';

export interface ReadbackInput {
  mode: 'cold' | 'warm';
  systems: ReadbackSystem[];
  measures: ReadbackMeasure[];
  rounds: number;
  ringDir: string;
  lmdbDir: string;
  /** Instances read back, one get() (ringstore) or getRange (lmdb) at a time. */
  ids: number[];
  /** The type of the type scan. */
  type: string;
  /** The time range of the time scan, inclusive, in ms. */
  fromTime: number;
  toTime: number;
}

export interface ReadbackPass {
  system: ReadbackSystem;
  measure: ReadbackMeasure;
  /** 0 for cold passes, the round for warm ones. */
  round: number;
  pass: ReadPass;
  /** Peak resident set of the process that made the pass, at its end. */
  peakRssMb?: number;
  /** Added by the case: what the row should say about how the pass was made. */
  notes?: string[];
}

export interface ReadbackAnswer {
  passes: ReadbackPass[];
  openSeconds: Partial<Record<ReadbackSystem, number>>;
  peakRssMb: number;
}

interface Opened {
  ring?: RingStore;
  lmdb?: LmdbReader;
  ringIds: bigint[];
}

async function openSystems(
  input: ReadbackInput,
  openSeconds: ReadbackAnswer['openSeconds'],
): Promise<Opened> {
  const opened: Opened = { ringIds: input.ids.map(BigInt) };
  for (const system of input.systems) {
    const start = nowSeconds();
    if (system === 'ringstore') opened.ring = await RingStore.open({ dir: input.ringDir });
    else {
      const { LmdbReader, TIMED_HEADER_BYTES } = await import('../cases/lmdb.js');
      opened.lmdb = new LmdbReader(input.lmdbDir, TIMED_HEADER_BYTES);
    }
    openSeconds[system] = nowSeconds() - start;
  }
  return opened;
}

function pass(
  opened: Opened,
  input: ReadbackInput,
  system: ReadbackSystem,
  measure: ReadbackMeasure,
): Promise<ReadPass> | ReadPass {
  if (system === 'lmdb') {
    const lmdb = opened.lmdb!;
    if (measure === 'readback') return lmdb.readInstances(input.ids);
    return measure === 'type scan' ? lmdb.scanType(input.type) : lmdb.scanTime(input.fromTime, input.toTime);
  }
  const ring = opened.ring!;
  if (measure === 'readback') return readInstances(ring, opened.ringIds);
  return measure === 'type scan' ? scanType(ring, input.type) : scanTime(ring, input.fromTime, input.toTime);
}

export async function run(input: ReadbackInput): Promise<ReadbackAnswer> {
  const openSeconds: ReadbackAnswer['openSeconds'] = {};
  const opened = await openSystems(input, openSeconds);
  const passes: ReadbackPass[] = [];
  try {
    for (const measure of input.measures) {
      if (input.mode === 'cold') {
        for (const system of input.systems) {
          passes.push({ system, measure, round: 0, pass: await pass(opened, input, system, measure) });
        }
        continue;
      }
      for (const system of input.systems) await pass(opened, input, system, measure);
      for (let round = 0; round < input.rounds; round++) {
        // Alternate who goes first, so neither system always runs right after the other's pass.
        const order = round % 2 === 0 ? input.systems : [...input.systems].reverse();
        for (const system of order) {
          passes.push({ system, measure, round, pass: await pass(opened, input, system, measure) });
        }
      }
    }
  } finally {
    await opened.ring?.close();
    await opened.lmdb?.close();
  }
  const peak = peakRssMb();
  for (const made of passes) made.peakRssMb = peak;
  return { passes, openSeconds, peakRssMb: peak };
}
