import { join } from 'node:path';
import type { CaseContext } from '../case.js';
import { type BenchConfig, sizedConfig } from '../config.js';
import { abortNote, runFresh } from '../fresh.js';
import { type CaseResult, medianRounds, nowSeconds, throughput } from '../measure.js';
import type {
  ReadbackAnswer,
  ReadbackInput,
  ReadbackMeasure,
  ReadbackPass,
  ReadbackSystem,
} from '../probes/readback.js';
import { note } from '../progress.js';
import { SCANNED_TYPE, Workload } from '../workload.js';
import { writeThroughApi } from './api-write.js';
import { loadLmdbTimed, type WrittenBatches } from './lmdb-timed.js';
import { sizeLabel } from './store-files.js';

/**
 * Issue 10's read-back case: BENCH_READBACK_EVENTS events written through RingStore.put, and the
 * same events (versions and timestamps from ringstore's put results) loaded into lmdb. Then, in
 * fresh processes: `readInstances` random instances read back one await at a time, the whole domain
 * scanned for one event type, and for the middle fifth of its time range. Cold: the first pass of
 * one system and one measure in a process of its own, right after open (the page cache stays
 * warm: dropping it needs root). Warm: one process with both systems open, a warm-up pass, then
 * `rounds` passes alternating the systems; each row is the median.
 */
const SYSTEMS: readonly ReadbackSystem[] = ['lmdb', 'ringstore'];
const MEASURES: readonly ReadbackMeasure[] = ['readback', 'type scan', 'time scan'];
const COLD = 'cold (page cache warm)';

/** The time range of the time scan: from the batch at 40 % of the log to the one at 60 %. */
function middleFifth(timestamps: Float64Array): { fromTime: number; toTime: number } {
  const sorted = Float64Array.from(timestamps).sort();
  const at = (share: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * share))]!;
  return { fromTime: at(0.4), toTime: at(0.6) };
}

function describe(measure: ReadbackMeasure, system: ReadbackSystem, input: BaseInput): string {
  if (measure === 'readback') {
    return `${input.ids.length} instances, one ${system === 'lmdb' ? 'getRange' : 'get()'} at a time`;
  }
  const how = system === 'lmdb' ? 'full getRange + filter' : 'read()';
  return measure === 'type scan'
    ? `whole domain, type ${input.type} (${how})`
    : `whole domain, middle fifth of its time range (${how})`;
}

function rowsOf(passes: readonly ReadbackPass[], input: BaseInput, cache: string): CaseResult[] {
  const rounds: CaseResult[][] = [];
  for (const { system, measure, round, pass, peakRssMb, notes } of passes) {
    rounds[round] ??= [];
    rounds[round]!.push({
      id: `${measure} ${system} ${cache}`,
      kind: 'read',
      system,
      description: describe(measure, system, input),
      ...throughput(pass.events, pass.bytes, pass.seconds),
      ...(peakRssMb === undefined ? {} : { peakRssMb }),
      notes: [
        ...(pass.scanned === undefined ? [] : [`${pass.events.toLocaleString('en-US')} matched`]),
        ...(notes ?? []),
      ],
    });
  }
  return medianRounds(rounds.filter((round) => round !== undefined));
}

/** Both systems must have returned the same events (count and payload bytes), or the comparison is void. */
function checkSameEvents(passes: readonly ReadbackPass[]): void {
  for (const measure of MEASURES) {
    const seen = new Set(
      passes.filter((p) => p.measure === measure).map((p) => `${p.pass.events} events of ${p.pass.bytes} B`),
    );
    if (seen.size > 1) throw new Error(`${measure}: the systems returned ${[...seen].join(' and ')}`);
  }
}

interface Loaded {
  written: WrittenBatches;
  ringEventsPerSec: number;
  lmdbLoadSeconds: number;
}

/** The workload through RingStore.put, then the same events (its versions and timestamps) into lmdb. */
async function writeBoth(
  config: BenchConfig,
  workload: Workload,
  dirs: { ringDir: string; lmdbDir: string },
  label: string,
): Promise<Loaded> {
  const written: WrittenBatches = {
    firstVersions: new Uint32Array(workload.batchCount),
    timestamps: new Float64Array(workload.batchCount),
  };
  const ring = await writeThroughApi(
    dirs.ringDir,
    config,
    workload,
    `${label} ringstore write`,
    (batch, result) => {
      written.firstVersions[batch] = result.firstVersion;
      written.timestamps[batch] = result.timestamp;
    },
  );
  note(`${label}: loading the same events into lmdb`);
  const loading = nowSeconds();
  await loadLmdbTimed(dirs.lmdbDir, workload, config.batchEvents, written);
  return { written, ringEventsPerSec: ring.eventsPerSec, lmdbLoadSeconds: nowSeconds() - loading };
}

type BaseInput = Omit<ReadbackInput, 'mode' | 'systems' | 'measures'>;

/** One fresh process per system and measure, each making one pass right after open. */
async function coldPasses(base: BaseInput, label: string): Promise<ReadbackAnswer> {
  const cold: ReadbackAnswer = { passes: [], openSeconds: {}, peakRssMb: 0 };
  for (const measure of MEASURES) {
    for (const system of SYSTEMS) {
      note(`${label}: ${measure}, ${system}, first pass in a fresh process`);
      const input: ReadbackInput = { ...base, mode: 'cold', systems: [system], measures: [measure] };
      const { answer, aborts } = await runFresh<ReadbackAnswer>({ probe: 'readback', input });
      for (const made of answer.passes) made.notes = abortNote(aborts);
      cold.passes.push(...answer.passes);
      Object.assign(cold.openSeconds, answer.openSeconds);
    }
  }
  return cold;
}

/** One fresh process with both systems open: a warm-up pass each, then alternating rounds. */
async function warmPasses(base: BaseInput, label: string): Promise<ReadbackAnswer> {
  note(`${label}: warm passes, both systems in one fresh process`);
  const input: ReadbackInput = { ...base, mode: 'warm', systems: [...SYSTEMS], measures: [...MEASURES] };
  const { answer, aborts } = await runFresh<ReadbackAnswer>({ probe: 'readback', input });
  for (const made of answer.passes) made.notes = abortNote(aborts);
  return answer;
}

export async function run(context: CaseContext): Promise<CaseResult[]> {
  const { readbackEvents, readbackInstanceEvents } = context.config;
  const config = sizedConfig(context.config, readbackEvents, readbackInstanceEvents);
  const workload = new Workload(config);
  const dirs = { ringDir: join(context.dir, 'ringstore'), lmdbDir: join(context.dir, 'lmdb') };
  const label = `readback ${sizeLabel(config.events)}`;
  const loaded = await writeBoth(config, workload, dirs, label);
  const base: BaseInput = {
    ...dirs,
    rounds: config.rounds,
    ids: workload.readSample(config.readInstances).map((instance) => workload.idOf(instance)),
    type: SCANNED_TYPE,
    ...middleFifth(loaded.written.timestamps),
  };
  const cold = await coldPasses(base, label);
  const warm = await warmPasses(base, label);
  checkSameEvents([...cold.passes, ...warm.passes]);
  const rows = [...rowsOf(warm.passes, base, 'warm'), ...rowsOf(cold.passes, base, COLD)];
  rows[0]?.notes.push(
    `${config.events.toLocaleString('en-US')} events, ${config.instances.toLocaleString('en-US')} instances ` +
      `of ${readbackInstanceEvents}; written through RingStore.put at ` +
      `${loaded.ringEventsPerSec.toLocaleString('en-US')} events/s (durability write); lmdb loaded in ` +
      `${loaded.lmdbLoadSeconds.toFixed(1)} s`,
    `open in the warm process: ringstore ${warm.openSeconds.ringstore?.toFixed(2)} s, ` +
      `lmdb ${warm.openSeconds.lmdb?.toFixed(2)} s; warm rows: median of ${config.rounds} alternating passes`,
    'cold rows: one pass per fresh process right after open (ringstore open ' +
      `${cold.openSeconds.ringstore?.toFixed(2)} s); the OS page cache is not dropped`,
  );
  return rows;
}
