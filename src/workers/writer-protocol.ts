import type { WireError } from '../errors.js';
import type { CommitMessage, CutMessage, FailedMessage } from '../pipeline/writer-loop.js';
import type { IndexRebuild } from '../storage/open-log.js';
import type { RecoveryAction } from '../storage/recovery.js';
import type { Durability } from '../types.js';
import type { WriterFaultPlan } from './writer-faults.js';

/** What the writer thread receives once, at start-up. */
export interface WriterWorkerData {
  sab: SharedArrayBuffer;
  dir: string;
  durability: Durability;
  generationBytes: number;
  maxBatchesPerCycle: number;
  idleWaitMs: number;
  claimTimeoutMs: number;
  indexCacheBytes: number;
  instanceCacheSize: number;
  checkpointIndexBytes: number;
  runFanIn: number;
  faults?: WriterFaultPlan;
}

/** Messages from the writer thread to the main thread (one 'commit' per commit cycle). */
export type WriterWorkerMessage =
  | { type: 'ready'; generation: number; recovery: RecoveryAction[]; indexRebuilds: IndexRebuild[] }
  | { type: 'open-failed'; error: WireError }
  | { type: 'stopped'; generation: number }
  | CommitMessage
  | CutMessage
  | FailedMessage;
