import type { WireError } from '../errors.js';
import type { WaitStrategyName } from '../pipeline/wait-strategy.js';
import type { CommitMessage, FailedMessage } from '../pipeline/writer-loop.js';
import type { IndexRebuild } from '../storage/open-log.js';
import type { RecoveryAction } from '../storage/recovery.js';
import type { Durability } from '../types.js';

/** What the writer thread receives once, at start-up. */
export interface WriterWorkerData {
  sab: SharedArrayBuffer;
  dir: string;
  durability: Durability;
  generationBytes: number;
  maxBatchesPerCycle: number;
  idleWaitMs: number;
  /** The writer's idle WaitStrategy. */
  idleWait: WaitStrategyName;
  claimTimeoutMs: number;
  indexCacheBytes: number;
  instanceCacheSize: number;
  checkpointIndexBytes: number;
  runFanIn: number;
}

/** Messages from the writer thread to the main thread (one 'commit' per commit cycle). */
export type WriterWorkerMessage =
  | { type: 'ready'; generation: number; recovery: RecoveryAction[]; indexRebuilds: IndexRebuild[] }
  | { type: 'open-failed'; error: WireError }
  | { type: 'stopped'; generation: number }
  | CommitMessage
  | FailedMessage;
