import type { EventStore } from '../api/event-store.js';
import type { StoreMetrics } from '../api/http/metrics.js';
import { RingStore, ringStoreThreads } from '../api/ring-store.js';
import { CONTROL } from '../pipeline/ring-layout.js';
import type { IndexRebuild } from '../storage/open-log.js';
import type { RecoveryAction } from '../storage/recovery.js';
import type { ServeConfig } from './config.js';

export interface ServedStore {
  store: EventStore;
  /** What /metrics reports about the store's internals. */
  metrics?: () => StoreMetrics;
  /** What recovery cut or removed when the store opened; serve logs each action. */
  recovery?: readonly RecoveryAction[];
  /** Domains whose index files the open rebuilt from the log; serve logs each. */
  indexRebuilds?: readonly IndexRebuild[];
}

/**
 * Opens the store `ringstore serve` exposes: the embedded RingStore (ring, CRC pool, writer
 * thread) on the configured directory, durability, CRC threads, ring size and backpressure wait.
 */
export async function openServeStore(config: Readonly<ServeConfig>): Promise<ServedStore> {
  const store = await RingStore.open({
    dir: config.dir,
    durability: config.durability,
    ...(config.crcThreads === 0 ? { crc: 'inline' as const } : {}),
    ...(config.crcThreads !== undefined && config.crcThreads > 0 ? { crcThreads: config.crcThreads } : {}),
    ...(config.ringBytes !== undefined ? { ringBytes: config.ringBytes } : {}),
    ...(config.backpressureTimeoutMs !== undefined
      ? { backpressureTimeoutMs: config.backpressureTimeoutMs }
      : {}),
    ...(config.indexCacheBytes !== undefined ? { indexCacheBytes: config.indexCacheBytes } : {}),
    ...(config.instanceCacheSize !== undefined ? { instanceCacheSize: config.instanceCacheSize } : {}),
  });
  return {
    store,
    metrics: () => ringStoreMetrics(store),
    recovery: store.recovery,
    indexRebuilds: store.indexRebuilds,
  };
}

/** Reads RingStore's counters, ring cursors and CRC pool for /metrics. */
export function ringStoreMetrics(store: RingStore): StoreMetrics {
  const stats = store.stats();
  const { ring, pool } = ringStoreThreads(store);
  // Bytes between the reclaim point and the claim point are in use (cursors wrap: >>> 0).
  const used = (ring.load(CONTROL.claimCursor) - ring.load(CONTROL.releasedCursor)) >>> 0;
  return {
    appendedBatches: stats.batches,
    appendedEvents: stats.appendedEvents,
    appendedBytes: stats.appendedBytes,
    generations: stats.generations,
    commits: stats.commits,
    fsyncs: stats.fsyncs,
    fsyncSecondsTotal: stats.fsyncSeconds,
    fsyncSecondsLast: stats.lastFsyncSeconds,
    fsyncDurations: store.fsyncDurations(),
    backpressureRejections: stats.backpressureRejections,
    ringBytes: ring.ringBytes,
    ringUsedBytes: Math.min(used, ring.ringBytes),
    crcThreads: pool ? store.options.crcThreads : 0,
    caches: store.cacheStats(),
    ...(pool ? { crcUtilization: pool.utilization } : {}),
  };
}
