/**
 * `ringstore/cluster`: ringstore on a NATS JetStream cluster (docs/CLUSTER.md). A separate entry
 * point, so that only applications that use a cluster load the NATS client.
 *
 *   import { ClusterStore } from 'ringstore/cluster';
 *   const store = await ClusterStore.open(dir, { cluster: { servers: 'nats://…', nodeId: 'a' } });
 *
 * `ClusterStore.open(dir, options)` is `RingStore.open({ dir, ...options })` with a `cluster` option.
 */

export type { ClusterDomainStatus, ClusterNodeStatus } from './api/cluster/cluster-node.js';
export type { ClusterOptions } from './api/cluster/cluster-options.js';
export { type ClusterStatus, readClusterStatus } from './api/cluster/cluster-status.js';
export { ClusterStore, type ClusterStoreOptions } from './api/cluster/cluster-store.js';
export type { AggregateIdInput, CommitNotice, EventStore } from './api/event-store.js';
export { RingStore } from './api/ring-store.js';
export { RingStoreError } from './errors.js';
export type * from './types.js';
