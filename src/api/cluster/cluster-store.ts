import { RingStore, type RingStoreOptions } from '../ring-store.js';
import type { ClusterOptions } from './cluster-options.js';

/** The options of ClusterStore.open: RingStore's, with `cluster` required and `dir` apart. */
export type ClusterStoreOptions = Omit<RingStoreOptions, 'dir' | 'cluster'> & { cluster: ClusterOptions };

/** A cluster node: a RingStore opened in cluster mode. */
export type ClusterStore = RingStore;

/**
 * `ClusterStore.open(dir, { cluster })` is `RingStore.open({ dir, cluster })` (docs/CLUSTER.md):
 * kept as the cluster entry point's name, so that code written against it goes on working.
 */
export const ClusterStore = Object.freeze({
  open(dir: string, options: ClusterStoreOptions): Promise<ClusterStore> {
    return RingStore.open({ ...options, dir });
  },
});
