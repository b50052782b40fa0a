/**
 * Bench sizes, read once from the environment by the runner and handed to every case child as JSON,
 * so a run is described completely by the config recorded in its results file.
 */
export interface BenchConfig {
  /** Events appended by each write case (BENCH_EVENTS, default 1,000,000). */
  events: number;
  /**
   * Events each write case puts into the same store, in the same process and the same way, before it
   * starts measuring (BENCH_WARMUP_EVENTS, default 500,000; quick 20,000; 0 for none). A cold
   * process spends its first second compiling, and a store compiles its index code (memtable spill,
   * run and Bloom filter writes, run merges) at its first index checkpoints, every 4 MiB of index
   * records (~210,000 events of the default workload). With 200,000 events of warm-up, V8's
   * optimizing compiler still ran 0.6–1.2 s inside the measured million events (0.3–0.6 µs of CPU
   * per event, most of the 'other' column); with 500,000, 0.3 s. The rows report a running store,
   * not its start.
   */
  warmupEvents: number;
  /** Payload bytes per event (BENCH_EVENT_BYTES, default 100). */
  eventBytes: number;
  /** Events per batch, i.e. per put (default 10). */
  batchEvents: number;
  /** Instances the batches are spread over (BENCH_INSTANCES, default events / 100: ~100 events each). */
  instances: number;
  /** Puts kept in flight by the embedded and lmdb cases (BENCH_IN_FLIGHT, default 100). */
  inFlight: number;
  /** Batches handed to one StorageWriter/StorageEngine call in the engine-alone case (default 100). */
  batchesPerCall: number;
  /** Instances read back by the read cases (BENCH_READ_INSTANCES, default 1,000). */
  readInstances: number;
  /** A write case stops issuing puts after this many seconds and reports what it did (BENCH_CASE_SECONDS). */
  caseSeconds: number;
  /**
   * Rounds over all selected cases (BENCH_ROUNDS, default 3; quick 1). Rounds are interleaved, so a
   * burst of load from elsewhere hits every case alike; each row reports its median round.
   */
  rounds: number;
  /** Seed of every pseudo-random choice (BENCH_SEED). */
  seed: number;
  /** True for the ~1-minute smoke run (BENCH_QUICK=1). */
  quick: boolean;
  /** Store sizes of the scale case, ascending (BENCH_SCALE_EVENTS, default 1,000,000 and 10,000,000). */
  scaleEvents: number[];
  /** Events per instance in the scale case (BENCH_SCALE_INSTANCE_EVENTS, default 10: one batch each). */
  scaleInstanceEvents: number;
  /** Events written by the read-back case (BENCH_READBACK_EVENTS, default 1,000,000). */
  readbackEvents: number;
  /** Events per instance in the read-back case (BENCH_READBACK_INSTANCE_EVENTS, default 100). */
  readbackInstanceEvents: number;
}

function nonNegativeInt(name: string, fallback: number): number {
  const raw = process.env[name];
  return raw === '0' ? 0 : positiveInt(name, fallback);
}

function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw.replaceAll('_', ''));
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function positiveInts(name: string, fallback: readonly number[]): number[] {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return [...fallback];
  const values = raw.split(',').map((part) => Number(part.trim().replaceAll('_', '')));
  if (values.some((value) => !Number.isSafeInteger(value) || value <= 0)) {
    throw new Error(
      `${name} must be a comma-separated list of positive integers, got ${JSON.stringify(raw)}`,
    );
  }
  return [...new Set(values)].sort((a, b) => a - b);
}

/** Events must fill whole batches and every instance the same number of whole batches. */
function checkShape(name: string, events: number, instanceEvents: number, batchEvents: number): void {
  if (instanceEvents % batchEvents !== 0 || events % instanceEvents !== 0) {
    throw new Error(
      `${name}: ${events} events of ${instanceEvents} per instance do not make whole batches of ${batchEvents}`,
    );
  }
}

export function configFromEnv(): BenchConfig {
  const quick = process.env.BENCH_QUICK === '1';
  const events = positiveInt('BENCH_EVENTS', quick ? 50_000 : 1_000_000);
  const batchEvents = positiveInt('BENCH_BATCH_EVENTS', 10);
  const instances = positiveInt('BENCH_INSTANCES', Math.max(1, Math.round(events / 100)));
  const config: BenchConfig = {
    events,
    warmupEvents: nonNegativeInt('BENCH_WARMUP_EVENTS', quick ? 20_000 : 500_000),
    eventBytes: positiveInt('BENCH_EVENT_BYTES', 100),
    batchEvents,
    instances,
    inFlight: positiveInt('BENCH_IN_FLIGHT', 100),
    batchesPerCall: positiveInt('BENCH_BATCHES_PER_CALL', 100),
    readInstances: Math.min(instances, positiveInt('BENCH_READ_INSTANCES', quick ? 100 : 1_000)),
    caseSeconds: positiveInt('BENCH_CASE_SECONDS', quick ? 10 : 45),
    rounds: positiveInt('BENCH_ROUNDS', quick ? 1 : 3),
    seed: positiveInt('BENCH_SEED', 20_261_124),
    quick,
    scaleEvents: positiveInts('BENCH_SCALE_EVENTS', quick ? [50_000, 500_000] : [1_000_000, 10_000_000]),
    scaleInstanceEvents: positiveInt('BENCH_SCALE_INSTANCE_EVENTS', 10),
    readbackEvents: positiveInt('BENCH_READBACK_EVENTS', quick ? 50_000 : 1_000_000),
    readbackInstanceEvents: positiveInt('BENCH_READBACK_INSTANCE_EVENTS', 100),
  };
  for (const [name, value] of [
    ['BENCH_EVENTS', config.events],
    ['BENCH_WARMUP_EVENTS', config.warmupEvents],
  ] as const) {
    if (value % config.batchEvents !== 0) {
      throw new Error(`${name} (${value}) must be a multiple of the batch size ${config.batchEvents}`);
    }
  }
  for (const events of config.scaleEvents) {
    checkShape('BENCH_SCALE_EVENTS', events, config.scaleInstanceEvents, batchEvents);
  }
  checkShape('BENCH_READBACK_EVENTS', config.readbackEvents, config.readbackInstanceEvents, batchEvents);
  if (config.eventBytes > 65_535) throw new Error('BENCH_EVENT_BYTES must be at most 65535');
  return config;
}

/** `config` resized to `events` events with `instanceEvents` events per instance (scale, read-back). */
export function sizedConfig(config: BenchConfig, events: number, instanceEvents: number): BenchConfig {
  const instances = events / instanceEvents;
  return {
    ...config,
    events,
    warmupEvents: 0,
    instances,
    readInstances: Math.min(config.readInstances, instances),
  };
}
