import { availableParallelism } from 'node:os';
import { RingStoreError } from '../errors.js';
import { DEFAULT_GENERATION_BYTES } from '../model/limits.js';
import { DEFAULT_RING_BYTES, isPowerOfTwo } from '../pipeline/ring-layout.js';
import type { WaitStrategyName } from '../pipeline/wait-strategy.js';
import type { Durability } from '../types.js';
import {
  type ClusterOptions,
  type ResolvedClusterOptions,
  resolveClusterOptions,
} from './cluster/cluster-options.js';

/** Options of RingStore.open. Every option but `dir` has a default; README.md explains each. */
export interface RingStoreOptions {
  /** The data directory (created when missing). One process may hold a directory at a time. */
  dir: string;
  /**
   * When a put resolves: 'fsync' (default) after the fsync covering its generation returned;
   * 'write' after write(); 'none' after the writer accepted it.
   */
  durability?: Durability;
  /**
   * Where event CRCs are computed: 'pool' in the CRC worker pool, off the producers' threads;
   * 'inline' by the producer itself, skipping the pool; 'auto' (default) chooses by the cores the
   * process may use (see chooseCrcMode).
   */
  crc?: 'auto' | CrcMode;
  /** Threads of the CRC pool (default 1; ignored when CRCs are computed inline). */
  crcThreads?: number;
  /** Size of the shared ring in bytes: a power of two, 64 KiB … 1 GiB (default 16 MiB). */
  ringBytes?: number;
  /** Most encoded batch bytes per generation (default 4096; a larger batch is a generation alone). */
  generationBytes?: number;
  /** How long a put waits for ring space before it fails with BACKPRESSURE (default 5000 ms). */
  backpressureTimeoutMs?: number;
  /** How many puts of one producer may wait for ring space at once; more fail at once (default 10000). */
  maxWaitingPuts?: number;
  /** Most batches the writer hands the storage in one group commit (default 8192). */
  maxBatchesPerCommit?: number;
  /**
   * A producer hands its new records on to the CRC pool (or the writer, with crc 'inline') at the
   * end of each turn of its thread and, when this is above 0, also every `handoffBytes` of ring
   * records within a long burst of puts (default 32 KiB; 0: only at the end of a turn). Slices let
   * the writer commit the start of a burst while the producer still encodes the rest, so the two
   * threads work at the same time instead of taking turns, at the cost of more hand-offs and more,
   * smaller commits. On the 2-core bench machine, in paired runs of one build, 32 KiB measured
   * 1.06–1.28× the events/s of 0 with 'fsync' (4 pairs) and 1.06–1.35× with 'none' (3 pairs)
   * (docs/BENCHMARKS.md, "Stages that take turns").
   */
  handoffBytes?: number;
  /**
   * How long the writer lets the oldest record of the ring stay claimed but unpublished before it
   * fails the store (default 10000 ms): that happens only when a producer's thread ends in the middle
   * of a put, and every later put would otherwise wait behind the record until it times out.
   */
  claimTimeoutMs?: number;
  /**
   * Bytes of index files (instance runs, position entries, index records) kept in memory, by the
   * writer thread and by the reader on the opening thread each (default 16 MiB; docs/OPERATIONS.md,
   * "Memory").
   */
  indexCacheBytes?: number;
  /** Instances whose version and idempotency keys the writer keeps in memory (default 100,000). */
  instanceCacheSize?: number;
  /**
   * A domain's index is checkpointed once this many index bytes follow its last checkpoint, and at
   * close (default 4 MiB): it bounds the index kept in memory past it and what an open after a
   * crash reads.
   */
  checkpointIndexBytes?: number;
  /** Instance runs merged at a time (default 4). */
  runFanIn?: number;
  /**
   * How the writer thread waits when the ring has no work for it (src/pipeline/wait-strategy.ts):
   * 'blocking' (default) sleeps in the kernel until a producer wakes it; 'spin-then-block' first
   * re-reads the ring for a few microseconds, which saves wake-ups when a core is to spare.
   */
  writerWait?: WriterWaitStrategy;
  /**
   * Cluster mode on NATS JetStream (docs/CLUSTER.md): the writer commits each generation as one
   * JetStream message of its domain's stream, and applies every domain stream to this store.
   */
  cluster?: ClusterOptions;
}

/** The wait strategies a worker thread may use while idle ('async' is for threads with I/O to await). */
export type WriterWaitStrategy = Exclude<WaitStrategyName, 'async'>;

/** Where CRCs are computed once 'auto' is resolved. */
export type CrcMode = 'pool' | 'inline';

/** The options in effect: every default applied, and `crc` the mode chosen ('auto' resolved). */
export type ResolvedRingStoreOptions = Readonly<
  Omit<Required<RingStoreOptions>, 'crc' | 'cluster'> & { crc: CrcMode; cluster?: ResolvedClusterOptions }
>;

/**
 * The CRC mode of crc 'auto': 'inline' on up to two cores, 'pool' from three. Measured on a 2-core
 * machine (docs/BENCHMARKS.md), the pool lost in most write cases (fsync, 1 producer: 0.67–0.84× of
 * inline; 'none', main thread: 0.80–0.82×; fsync, main thread: 0.93× and, in one run, 1.10×): its
 * thread competes with the writer and the producer for the same two cores, and its hand-off costs
 * more than the CRCs it takes off the producer. With a third core the pool can run beside both
 * without taking one from them.
 */
export function chooseCrcMode(cores: number): CrcMode {
  return cores >= 3 ? 'pool' : 'inline';
}

export const RING_STORE_DEFAULTS = Object.freeze({
  durability: 'fsync' as Durability,
  crc: 'auto' as 'auto' | CrcMode,
  crcThreads: 1,
  ringBytes: DEFAULT_RING_BYTES,
  generationBytes: DEFAULT_GENERATION_BYTES,
  backpressureTimeoutMs: 5_000,
  maxWaitingPuts: 10_000,
  maxBatchesPerCommit: 8_192,
  handoffBytes: 32 * 1024,
  claimTimeoutMs: 10_000,
  indexCacheBytes: 16 * 1024 * 1024,
  instanceCacheSize: 100_000,
  checkpointIndexBytes: 4 * 1024 * 1024,
  runFanIn: 4,
  writerWait: 'blocking' as WriterWaitStrategy,
});

/**
 * The accepted range of every numeric option: the one source for RingStore.open's validation and
 * for the CLI flags that set these options (src/cli/config.ts), so the two cannot disagree.
 */
export const RING_STORE_BOUNDS = Object.freeze({
  crcThreads: { min: 1, max: 64 },
  ringBytes: { min: 64 * 1024, max: 1 << 30 },
  generationBytes: { min: 256, max: 64 * 1024 * 1024 },
  backpressureTimeoutMs: { min: 0, max: 600_000 },
  maxWaitingPuts: { min: 0, max: 10_000_000 },
  maxBatchesPerCommit: { min: 1, max: 1_000_000 },
  handoffBytes: { min: 0, max: 1 << 30 },
  claimTimeoutMs: { min: 100, max: 3_600_000 },
  indexCacheBytes: { min: 0, max: 64 * 1024 * 1024 * 1024 },
  instanceCacheSize: { min: 1, max: 100_000_000 },
  checkpointIndexBytes: { min: 256, max: 1 << 30 },
  runFanIn: { min: 2, max: 64 },
});

type BoundedOption = keyof typeof RING_STORE_BOUNDS;

const KNOWN = new Set(['dir', 'cluster', ...Object.keys(RING_STORE_DEFAULTS)]);

function invalid(option: string, message: string): RingStoreError {
  return new RingStoreError('INVALID_OPTION', `${option}: ${message}`, { option });
}

function integer(options: Record<string, unknown>, option: BoundedOption): number {
  const { min, max } = RING_STORE_BOUNDS[option];
  const value = options[option] ?? RING_STORE_DEFAULTS[option];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw invalid(option, `must be an integer from ${min} to ${max}`);
  }
  return value;
}

function oneOf<T extends string>(options: Record<string, unknown>, option: string, allowed: readonly T[]): T {
  const value = options[option] ?? RING_STORE_DEFAULTS[option as keyof typeof RING_STORE_DEFAULTS];
  if (!allowed.includes(value as T))
    throw invalid(option, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`);
  return value as T;
}

function resolveCrc(crc: 'auto' | CrcMode): CrcMode {
  return crc === 'auto' ? chooseCrcMode(availableParallelism()) : crc;
}

/** Applies defaults, validates every option (INVALID_OPTION names the option) and freezes the result. */
export function resolveRingStoreOptions(options: unknown): ResolvedRingStoreOptions {
  if (typeof options !== 'object' || options === null) {
    throw invalid('options', 'RingStore.open needs an options object with at least { dir }');
  }
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!KNOWN.has(key)) throw invalid(key, 'unknown option');
  }
  if (typeof o.dir !== 'string' || o.dir.length === 0 || o.dir.includes('\0')) {
    throw invalid('dir', 'must be a non-empty path without NUL');
  }
  const ringBytes = integer(o, 'ringBytes');
  if (!isPowerOfTwo(ringBytes)) throw invalid('ringBytes', 'must be a power of two');
  return Object.freeze({
    dir: o.dir,
    durability: oneOf(o, 'durability', ['fsync', 'write', 'none'] as const),
    crc: resolveCrc(oneOf(o, 'crc', ['auto', 'pool', 'inline'] as const)),
    crcThreads: integer(o, 'crcThreads'),
    ringBytes,
    generationBytes: integer(o, 'generationBytes'),
    backpressureTimeoutMs: integer(o, 'backpressureTimeoutMs'),
    maxWaitingPuts: integer(o, 'maxWaitingPuts'),
    maxBatchesPerCommit: integer(o, 'maxBatchesPerCommit'),
    handoffBytes: integer(o, 'handoffBytes'),
    claimTimeoutMs: integer(o, 'claimTimeoutMs'),
    indexCacheBytes: integer(o, 'indexCacheBytes'),
    instanceCacheSize: integer(o, 'instanceCacheSize'),
    checkpointIndexBytes: integer(o, 'checkpointIndexBytes'),
    runFanIn: integer(o, 'runFanIn'),
    writerWait: oneOf(o, 'writerWait', ['blocking', 'spin-then-block'] as const),
    ...(o.cluster !== undefined ? { cluster: resolveClusterOptions(o.cluster) } : {}),
  });
}
