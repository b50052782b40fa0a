import type { BenchConfig } from './config.js';

/**
 * Every case the runner knows, in run order: baselines first, so a partial run still has them.
 * `id` is what the command-line filter matches: any word, as a substring; an opt-in case only when
 * its id begins with the word (see selectSpecs).
 */
export interface CaseSpec {
  id: string;
  module: string;
  variant: string;
  /** Run in the first round only: the case alternates its systems and takes medians itself. */
  once?: boolean;
  /**
   * Puts in flight for this case instead of BENCH_IN_FLIGHT; its rows get the suffix `@<n>` and
   * are compared with the lmdb row of the same depth.
   */
  inFlight?: number;
  /** Diagnostic or long: left out of the default run, selected only by a filter word its id begins with. */
  optIn?: boolean;
  /** Seconds after which the case's child counts as hung, when its size is not bounded by caseSeconds. */
  timeoutSeconds?: (config: BenchConfig) => number;
  /** A run that selects this case also writes bench/results/<latest>-latest.{json,md} for its rows. */
  latest?: string;
}

export const CASE_SPECS: readonly CaseSpec[] = [
  { id: 'floor', module: 'floor', variant: 'write' },
  { id: 'lmdb-write', module: 'lmdb', variant: 'write' },
  { id: 'storage-engine-fsync', module: 'storage-engine', variant: 'fsync' },
  { id: 'storage-engine-none', module: 'storage-engine', variant: 'none' },
  { id: 'ringstore-main-fsync-pool', module: 'ringstore', variant: 'main:fsync:pool' },
  { id: 'ringstore-1-producer-fsync-pool', module: 'ringstore', variant: '1:fsync:pool' },
  { id: 'ringstore-4-producers-fsync-pool', module: 'ringstore', variant: '4:fsync:pool' },
  {
    id: 'ringstore-main-fsync-inline-turn-handoff',
    module: 'ringstore',
    variant: 'main:fsync:inline:0',
  },
  { id: 'ringstore-main-fsync-inline', module: 'ringstore', variant: 'main:fsync:inline' },
  { id: 'ringstore-1-producer-fsync-inline', module: 'ringstore', variant: '1:fsync:inline' },
  { id: 'ringstore-4-producers-fsync-inline', module: 'ringstore', variant: '4:fsync:inline' },
  { id: 'ringstore-main-none-pool', module: 'ringstore', variant: 'main:none:pool' },
  { id: 'ringstore-1-producer-none-pool', module: 'ringstore', variant: '1:none:pool' },
  { id: 'ringstore-4-producers-none-pool', module: 'ringstore', variant: '4:none:pool' },
  { id: 'ringstore-main-none-inline', module: 'ringstore', variant: 'main:none:inline' },
  { id: 'ringstore-1-producer-none-inline', module: 'ringstore', variant: '1:none:inline' },
  { id: 'ringstore-4-producers-none-inline', module: 'ringstore', variant: '4:none:inline' },
  { id: 'deep-lmdb-write', module: 'lmdb', variant: 'write', inFlight: 1_000, optIn: true },
  {
    id: 'deep-ringstore-main-fsync-pool',
    module: 'ringstore',
    variant: 'main:fsync:pool',
    inFlight: 1_000,
    optIn: true,
  },
  {
    id: 'deep-ringstore-4-producers-fsync-pool',
    module: 'ringstore',
    variant: '4:fsync:pool',
    inFlight: 1_000,
    optIn: true,
  },
  { id: 'reads-ringstore-lmdb', module: 'reads', variant: 'interleaved', once: true },
  // Needs nats-server (docs/CLUSTER.md); starts and stops three of its own.
  { id: 'cluster-r1-r3-single', module: 'cluster', variant: 'compare', once: true, optIn: true },
  {
    id: 'scale-open-crash',
    module: 'scale',
    variant: 'open',
    once: true,
    optIn: true,
    latest: 'scale',
    // Generous: writing and opening take a few µs per event; the crash adds 1 % of the largest size.
    timeoutSeconds: (config) => 300 + config.scaleEvents.reduce((sum, events) => sum + events, 0) / 10_000,
  },
  {
    id: 'readback-ringstore-lmdb',
    module: 'readback',
    variant: 'fresh',
    once: true,
    optIn: true,
    latest: 'readback',
    timeoutSeconds: (config) => 300 + config.readbackEvents / 5_000,
  },
  {
    id: 'ops-backup-repartition',
    module: 'ops',
    variant: 'largest',
    once: true,
    optIn: true,
    latest: 'ops',
    // Writing, two backups, cp and a repartition with its verify: a few passes over the store.
    timeoutSeconds: (config) => 300 + Math.max(...config.scaleEvents) / 5_000,
  },
];

/**
 * Specs whose id contains any of the filter words (all but the opt-in ones when there are none). An
 * opt-in case is selected only by a word its id begins with (`deep`, `scale`, `readback`, `ops`,
 * `cluster`, or more of its id): `npm run bench -- storage lmdb` runs the lmdb and storage rows, not
 * the minutes-long read-back case whose id also holds "lmdb" (nor rewrites its readback-latest.*).
 */
export function selectSpecs(filters: readonly string[]): CaseSpec[] {
  if (filters.length === 0) return CASE_SPECS.filter((spec) => spec.optIn !== true);
  const words = filters.map((filter) => filter.toLowerCase());
  return CASE_SPECS.filter((spec) => {
    const id = spec.id.toLowerCase();
    return words.some((word) => (spec.optIn === true ? id.startsWith(word) : id.includes(word)));
  });
}
