import type { WireError } from '../errors.js';
import type {
  ClusterControl,
  ClusterWriterConfig,
  ClusterWriterMessage,
} from '../pipeline/cluster/writer-node.js';
import type { WaitStrategyName } from '../pipeline/wait-strategy.js';
import type { CommitMessage, CutMessage, FailedMessage } from '../pipeline/writer-loop.js';
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
  /** Cluster mode: the writer commits through NATS JetStream and applies every domain stream. */
  cluster?: ClusterWriterConfig;
}

/**
 * What the main thread sends the writer thread after start-up (cluster mode only): 'follow' once
 * its reader listens for commits (the replicas start then), 'own' / 'disown' a domain.
 */
export type WriterControlMessage = { type: 'follow' } | ClusterControl;

/** Messages from the writer thread to the main thread (one 'commit' per commit cycle). */
export type WriterWorkerMessage =
  | { type: 'ready'; generation: number; recovery: RecoveryAction[]; indexRebuilds: IndexRebuild[] }
  | { type: 'open-failed'; error: WireError }
  | { type: 'stopped'; generation: number }
  | CommitMessage
  | CutMessage
  | FailedMessage
  | ClusterWriterMessage;
