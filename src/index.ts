/**
 * ringstore: an event store for Node.js. The package entry point.
 *
 *   import { RingStore } from 'ringstore';
 *   const store = await RingStore.open({ dir: './data' });
 */

export type { ClusterDomainStatus, ClusterNodeStatus } from './api/cluster/cluster-node.js';
export type { ClusterOptions } from './api/cluster/cluster-options.js';
export {
  Consumer,
  type ConsumerHandler,
  type ConsumerOptions,
  type ConsumerRunResult,
  consumer,
} from './api/consumer.js';
export {
  CONSUMER_POSITIONS_DOMAIN,
  type ConsumerPosition,
  type ConsumerPositions,
} from './api/consumer-positions.js';
export {
  type CommandResult,
  DEFAULT_MAX_RETRIES,
  type DecidedEvent,
  type Decider,
  type EventCodec,
  type HandleCommandOptions,
  handleCommand,
  type InstanceRef,
  jsonCodec,
} from './api/decider.js';
export type { AggregateIdInput, CommitNotice, EventStore } from './api/event-store.js';
export { Aggregate, Domain, Instance } from './api/facade.js';
export { RingStore, type RingStoreStats } from './api/ring-store.js';
export { RING_STORE_BOUNDS, RING_STORE_DEFAULTS, type RingStoreOptions } from './api/ring-store-options.js';
export {
  type DomainStream,
  type EventStream,
  type InstanceStream,
  type InstanceStreamOptions,
  instanceStream,
  type ReadStreamOptions,
  readStream,
} from './api/streams.js';
export {
  type SubscribeOptions,
  type Subscription,
  type SubscriptionEnd,
  subscribe,
} from './api/subscription.js';
export {
  ERROR_CATALOG,
  ERROR_CODES,
  type ErrorCode,
  fromWire,
  hasCode,
  RingStoreError,
  type WireError,
} from './errors.js';
export { LIMITS } from './model/limits.js';
export { MemoryEventStore, type MemoryEventStoreOptions } from './model/memory-store.js';
export { Producer, type ProducerHandle } from './pipeline/producer.js';
export type { BackupOptions, BackupProgress, BackupReport } from './storage/backup.js';
export type { RecoveryAction } from './storage/recovery.js';
export { StorageEngine } from './storage/storage-engine.js';
export { verifyStore } from './storage/verify.js';
export type {
  DomainReadResult,
  Durability,
  EventInput,
  ExpectedVersion,
  GetOptions,
  InstanceEvents,
  PutOptions,
  PutResult,
  ReadOptions,
  StoredEvent,
} from './types.js';
