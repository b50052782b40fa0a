/**
 * `ringstore/cluster`: ringstore on a NATS JetStream cluster (docs/CLUSTER.md). A separate entry
 * point, so that only applications that use a cluster load the NATS client.
 *
 *   import { ClusterStore } from 'ringstore/cluster';
 *   const store = await ClusterStore.open(dir, { cluster: { servers: 'nats://…', nodeId: 'a' } });
 */
export { type ClusterStatus, readClusterStatus } from './api/cluster/cluster-status.js';
export {
  type ClusterDomainStatus,
  type ClusterNodeStatus,
  type ClusterOptions,
  ClusterStore,
  type ClusterStoreOptions,
} from './api/cluster/cluster-store.js';
export type { AggregateIdInput, CommitNotice, EventStore } from './api/event-store.js';
export { RingStoreError } from './errors.js';
export type * from './types.js';
