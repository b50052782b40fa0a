import { join } from 'node:path';
import { RingStore } from '../../src/api/ring-store.js';
import { type CaseContext, dropPageCache } from '../case.js';
import {
  type CaseResult,
  medianRounds,
  nowSeconds,
  peakRssMb,
  type ReadPass,
  throughput,
} from '../measure.js';
import { SCANNED_TYPE } from '../workload.js';
import { readInstances, scanType } from './api-reads.js';
import { LmdbReader, loadLmdb } from './lmdb.js';
import { loadRingstore } from './ringstore-reads.js';

/**
 * Issue 4's read cases, ringstore and lmdb side by side in one process over the same data (the
 * write cases' 1,000,000 events): read back every event of `readInstances` random instances, and
 * scan the whole domain filtered by one event type, each warm and cold (page cache dropped, where
 * permitted). The two systems alternate pass by pass, so load from elsewhere on the machine hits
 * both alike; each row is the median of `rounds` passes.
 */
type System = 'lmdb' | 'ringstore';
type Measure = 'read' | 'scan';
type Cache = 'warm' | 'cold';

export async function run(context: CaseContext): Promise<CaseResult[]> {
  const { workload, config } = context;
  const lmdbDir = join(context.dir, 'lmdb');
  const ringDir = join(context.dir, 'ringstore');
  const loading = nowSeconds();
  await loadLmdb(lmdbDir, workload, config.batchEvents);
  loadRingstore(ringDir, workload);
  const loadSeconds = nowSeconds() - loading;
  const sample = workload.readSample(config.readInstances);
  const lmdbIds = sample.map((instance) => workload.idOf(instance));
  const ringIds = sample.map((instance) => BigInt(workload.idOf(instance)));

  const lmdb = new LmdbReader(lmdbDir);
  const opening = nowSeconds();
  const store = await RingStore.open({ dir: ringDir });
  const openSeconds = nowSeconds() - opening;

  const pass = (system: System, measure: Measure): Promise<ReadPass> | ReadPass => {
    if (system === 'lmdb')
      return measure === 'read' ? lmdb.readInstances(lmdbIds) : lmdb.scanType(SCANNED_TYPE);
    return measure === 'read' ? readInstances(store, ringIds) : scanType(store, SCANNED_TYPE);
  };
  const description = (system: System, measure: Measure): string =>
    measure === 'scan'
      ? `full scan, filter type ${SCANNED_TYPE}`
      : `${ringIds.length} instances, ${system === 'lmdb' ? 'getRange' : 'get()'} per instance`;

  const rounds: CaseResult[][] = [];
  const notes: string[] = [
    `data loaded in ${loadSeconds.toFixed(1)} s, RingStore opened in ${openSeconds.toFixed(2)} s`,
  ];
  let coldSkipped: string | undefined;
  const record = (round: number, system: System, measure: Measure, cache: Cache, result: ReadPass) => {
    rounds[round] ??= [];
    const rowNotes = measure === 'scan' ? [`${result.scanned} scanned, ${result.events} matched`] : [];
    rounds[round]!.push({
      id: `${measure} ${system} ${cache}`,
      kind: 'read',
      system,
      description: description(system, measure),
      ...throughput(result.events, result.bytes, result.seconds),
      peakRssMb: peakRssMb(),
      notes: rowNotes,
    });
  };

  try {
    for (const measure of ['read', 'scan'] as const) {
      // Warm-up, so the warm passes find every page of their data in the cache.
      await pass('lmdb', measure);
      await pass('ringstore', measure);
      for (let round = 0; round < config.rounds; round++) {
        // Alternate who goes first, so neither system always runs right after the other's pass.
        const order: System[] = round % 2 === 0 ? ['lmdb', 'ringstore'] : ['ringstore', 'lmdb'];
        for (const system of order) record(round, system, measure, 'warm', await pass(system, measure));
      }
      for (let round = 0; round < config.rounds && coldSkipped === undefined; round++) {
        const order: System[] = round % 2 === 0 ? ['lmdb', 'ringstore'] : ['ringstore', 'lmdb'];
        for (const system of order) {
          if (system === 'lmdb') await lmdb.reopen();
          const drop = dropPageCache();
          if (!drop.dropped) {
            coldSkipped = drop.reason;
            break;
          }
          record(round, system, measure, 'cold', await pass(system, measure));
        }
      }
    }
  } finally {
    await store.close();
    await lmdb.close();
  }
  const results = medianRounds(rounds.filter((round) => round !== undefined));
  // A cold row is only kept when every one of its rounds ran on a dropped cache.
  const kept = coldSkipped === undefined ? results : results.filter((result) => !result.id.endsWith(' cold'));
  kept[0]?.notes.push(...notes);
  if (coldSkipped !== undefined) kept[0]?.notes.push(`cold reads skipped: ${coldSkipped}`);
  return kept;
}
