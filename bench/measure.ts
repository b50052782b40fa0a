import type { ThreadCpu } from './cpu-meter.js';

/** What every case reports: one row of the results table. Plain JSON (it crosses a process boundary). */
export interface CaseResult {
  /** Stable case id, e.g. `ringstore main fsync pool`: the key ratios and filters use. */
  id: string;
  /**
   * 'write' or 'read': which baselines the ratios are taken against; 'open': a store opened in a
   * fresh process (the scale case), described by `open`; 'ops': a backup or repartition (the ops
   * case), described by `ops`.
   */
  kind: 'write' | 'read' | 'open' | 'ops';
  /** The system measured: floor, lmdb, engine, ringstore. */
  system: string;
  /** What was done, in a few words. */
  description: string;
  events: number;
  bytes: number;
  seconds: number;
  eventsPerSec: number;
  mbPerSec: number;
  fsyncs?: number;
  eventsPerFsync?: number;
  latencyP50Ms?: number;
  latencyP99Ms?: number;
  /** Median 4 KiB write + fdatasync latency measured in the case's directory just before it ran. */
  fsyncProbeMs?: number;
  /** Peak resident set of the case's process (all its threads), MiB. */
  peakRssMb?: number;
  /**
   * Write cases: CPU time of each of the process's threads during the measured interval, from
   * /proc/self/task/<tid>/schedstat, per event and by role, and the busy cores.
   */
  cpu?: ThreadCpu;
  /** events/s of every round, in run order, when the run had more than one round. */
  rounds?: number[];
  /** True when the case hit BENCH_CASE_SECONDS and reports a partial run (the rate is still valid). */
  capped?: boolean;
  notes: string[];
  /** kind 'open' only: what opening the store cost. */
  open?: OpenMeasure;
  /** kind 'ops' only: `cp -R` of the same bytes, and this row's bytes/s over cp's. */
  ops?: { cpSeconds: number; timesCp: number };
}

/**
 * One store opened in a fresh process: how long open took and what the process's resident set
 * was before open, after it and after one instance read. For an open row `seconds` is the open
 * time, `events` the events the store holds and `bytes` its size on disk.
 */
export interface OpenMeasure {
  /** The API that opened it: 'ringstore' (RingStore.open) or 'engine' (StorageEngine.open). */
  api: 'ringstore' | 'engine';
  /** Events in the store as counted after open (a crashed store keeps what recovery kept). */
  storeEvents: number;
  storeMb: number;
  openSeconds: number;
  rssBeforeOpenMb: number;
  rssAfterOpenMb: number;
  /** One get() of a random instance right after open. */
  readMs: number;
  readEvents: number;
  rssAfterReadMb: number;
  /** Rate at which the store was written through RingStore.put (durability 'write'). */
  writeEventsPerSec?: number;
  /** True for the store reopened after its writer was SIGKILLed mid-append. */
  afterCrash: boolean;
}

export const MIB = 1024 * 1024;

/** One timed read pass: events and payload bytes returned, and for scans how many were examined. */
export interface ReadPass {
  events: number;
  bytes: number;
  seconds: number;
  scanned?: number;
}

export function nowSeconds(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

export function peakRssMb(): number {
  // resourceUsage().maxRSS is in KiB and covers every thread of the process. Linux updates that
  // high-water mark lazily (when memory is unmapped), so it can lag the resident set of this very
  // moment: the peak is at least that.
  const maxRss = Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10;
  return Math.max(maxRss, rssMb());
}

/** Resident set of this process now (all its threads), MiB. */
export function rssMb(): number {
  return Math.round((process.memoryUsage.rss() / MIB) * 10) / 10;
}

/** The median of a list of numbers (the mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function round(value: number, digits = 1): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

export function throughput(
  events: number,
  bytes: number,
  seconds: number,
): Pick<CaseResult, 'events' | 'bytes' | 'seconds' | 'eventsPerSec' | 'mbPerSec'> {
  return {
    events,
    bytes,
    seconds: round(seconds, 3),
    eventsPerSec: Math.round(events / seconds),
    mbPerSec: round(bytes / MIB / seconds, 1),
  };
}

/** Put latencies in milliseconds, preallocated so recording allocates nothing. */
export class LatencyRecorder {
  readonly #samples: Float64Array;
  #count = 0;

  constructor(capacity: number) {
    this.#samples = new Float64Array(capacity);
  }

  record(ms: number): void {
    if (this.#count < this.#samples.length) this.#samples[this.#count++] = ms;
  }

  recordAll(samples: Float64Array): void {
    for (const sample of samples) this.record(sample);
  }

  /** A copy of the recorded samples (to post to another thread). */
  samples(): Float64Array {
    return this.#samples.slice(0, this.#count);
  }

  get count(): number {
    return this.#count;
  }

  /** p in [0, 100]; nearest-rank percentile. */
  percentile(p: number): number {
    if (this.#count === 0) return Number.NaN;
    const sorted = this.#samples.slice(0, this.#count).sort();
    const rank = Math.min(this.#count - 1, Math.max(0, Math.ceil((p / 100) * this.#count) - 1));
    return round(sorted[rank]!, 3);
  }
}

export interface InFlightRun {
  /** Operations that completed. */
  completed: number;
  seconds: number;
  /** True when the deadline stopped issuing before all operations were issued. */
  capped: boolean;
}

/**
 * The warm-up of a write case: `operation` over batches 0 … warmupBatches - 1 with the case's own
 * window, untimed and with no deadline, so the measured puts that follow run in a warm process.
 */
export async function warmUp(
  warmupBatches: number,
  inFlight: number,
  operation: (batch: number) => Promise<unknown>,
): Promise<void> {
  await runInFlight(warmupBatches, inFlight, Number.POSITIVE_INFINITY, operation, new LatencyRecorder(0));
}

/**
 * Keeps `inFlight` operations outstanding until `total` have been issued or `deadline` (seconds,
 * nowSeconds() clock) has passed, recording each operation's latency from issue to settle. Each
 * lane is a loop awaiting its own operation, so there is one promise chain per lane and nothing
 * is queued beyond the window.
 */
export async function runInFlight(
  total: number,
  inFlight: number,
  deadline: number,
  operation: (index: number) => Promise<unknown>,
  latencies: LatencyRecorder,
): Promise<InFlightRun> {
  let next = 0;
  let completed = 0;
  let capped = false;
  const start = nowSeconds();
  const lane = async (): Promise<void> => {
    while (next < total) {
      if (nowSeconds() > deadline) {
        capped = true;
        return;
      }
      const index = next++;
      const issued = performance.now();
      await operation(index);
      latencies.record(performance.now() - issued);
      completed++;
    }
  };
  const lanes: Promise<void>[] = [];
  for (let i = 0; i < Math.min(inFlight, total); i++) lanes.push(lane());
  await Promise.all(lanes);
  return { completed, seconds: nowSeconds() - start, capped };
}

/**
 * One row per case id from several rounds: the round with the median events/s (the lower middle
 * for an even count), with every round's events/s attached so the spread stays visible.
 */
export function medianRounds(rounds: readonly CaseResult[][]): CaseResult[] {
  const byId = new Map<string, CaseResult[]>();
  for (const round of rounds) {
    for (const row of round) {
      const rows = byId.get(row.id) ?? [];
      rows.push(row);
      byId.set(row.id, rows);
    }
  }
  const merged: CaseResult[] = [];
  for (const rows of byId.values()) {
    if (rows.length === 1) {
      merged.push(rows[0]!);
      continue;
    }
    const sorted = [...rows].sort((a, b) => a.eventsPerSec - b.eventsPerSec);
    const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
    merged.push({ ...median, rounds: rows.map((row) => row.eventsPerSec) });
  }
  return merged;
}
