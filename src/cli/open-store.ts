import type { ClusterOptions } from '../api/cluster/cluster-options.js';
import type { EventStore } from '../api/event-store.js';
import { RingStore } from '../api/ring-store.js';
import type { IndexRebuild } from '../storage/open-log.js';
import type { RecoveryAction } from '../storage/recovery.js';
import type { ServeClusterConfig, ServeConfig } from './config.js';

export interface ServedStore {
  /** /metrics reports the store's internals through its `metrics()` method, when it has one. */
  store: EventStore;
  /** What recovery cut or removed when the store opened; serve logs each action. */
  recovery?: readonly RecoveryAction[];
  /** Domains whose index files the open rebuilt from the log; serve logs each. */
  indexRebuilds?: readonly IndexRebuild[];
}

/**
 * Opens the store `ringstore serve` exposes: the embedded RingStore (ring, CRC pool, writer
 * thread) on the configured directory, durability, CRC threads, ring size and backpressure wait;
 * with --nats in cluster mode (docs/CLUSTER.md), its writer committing through NATS JetStream.
 */
export async function openServeStore(config: Readonly<ServeConfig>): Promise<ServedStore> {
  const store = await RingStore.open({
    dir: config.dir,
    durability: config.durability,
    ...(config.crcThreads === 0 ? { crc: 'inline' as const } : {}),
    ...(config.crcThreads !== undefined && config.crcThreads > 0
      ? { crc: 'pool' as const, crcThreads: config.crcThreads }
      : {}),
    ...(config.ringBytes !== undefined ? { ringBytes: config.ringBytes } : {}),
    ...(config.backpressureTimeoutMs !== undefined
      ? { backpressureTimeoutMs: config.backpressureTimeoutMs }
      : {}),
    ...(config.indexCacheBytes !== undefined ? { indexCacheBytes: config.indexCacheBytes } : {}),
    ...(config.instanceCacheSize !== undefined ? { instanceCacheSize: config.instanceCacheSize } : {}),
    ...(config.cluster ? { cluster: clusterOptions(config.cluster) } : {}),
  });
  return {
    store,
    recovery: store.recovery,
    indexRebuilds: store.indexRebuilds,
  };
}

function clusterOptions(cluster: ServeClusterConfig): ClusterOptions {
  return {
    servers: cluster.servers,
    nodeId: cluster.nodeId,
    ...(cluster.replicas !== undefined ? { replicas: cluster.replicas } : {}),
    ...(cluster.namespace !== undefined ? { namespace: cluster.namespace } : {}),
    ...(cluster.leaseTtlMs !== undefined ? { leaseTtlMs: cluster.leaseTtlMs } : {}),
  };
}
