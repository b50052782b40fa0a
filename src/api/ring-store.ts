import { RingStoreError } from '../errors.js';
import { validateInstanceAddress } from '../model/address.js';
import type { CommitListener } from '../model/commit-watchers.js';
import type { DurationHistogramSnapshot } from '../model/duration-histogram.js';
import { KeyGenerator } from '../model/ids.js';
import { validateDomain } from '../model/names.js';
import { validateInstanceRead, validateReadOptions } from '../model/queries.js';
import type { ProducerHandle } from '../pipeline/producer.js';
import type { BackupOptions, BackupReport } from '../storage/backup.js';
import { DirectoryLock } from '../storage/directory-lock.js';
import { domainDiskBytes } from '../storage/disk-usage.js';
import type { IndexRebuild } from '../storage/open-log.js';
import type { RecoveryAction } from '../storage/recovery.js';
import type { CacheStats } from '../storage/types.js';
import type {
  DomainReadResult,
  EventInput,
  GetOptions,
  InstanceEvents,
  PutOptions,
  PutResult,
  ReadOptions,
} from '../types.js';
import type { ClusterNode, ClusterNodeStatus } from './cluster/cluster-node.js';
import { type Consumer, type ConsumerOptions, consumer } from './consumer.js';
import type { AggregateIdInput, EventStore } from './event-store.js';
import { Domain } from './facade.js';
import type { MetricsSource, StoreMetrics } from './http/metrics.js';
import {
  RingEngine,
  type RingEngineInternals,
  type RingStoreStats,
  type RingStoreThreads,
} from './ring-engine.js';
import {
  type ResolvedRingStoreOptions,
  type RingStoreOptions,
  resolveRingStoreOptions,
} from './ring-store-options.js';
import { traced } from './tracing.js';
import { refuseUnheldPosition } from './wait-position.js';

export type { RingEngineInternals, RingStoreStats, RingStoreThreads } from './ring-engine.js';
export type { RingStoreOptions } from './ring-store-options.js';

const enginesOf = new WeakMap<RingStore, RingEngine>();

/**
 * The embedded ringstore (DESIGN.md §2), a facade: each method validates its arguments at the
 * boundary, traces the call, and delegates to a private RingEngine (ring-engine.ts), which owns the
 * ring, the writer thread, the CRC pool and this thread's reader. Puts are validated by the
 * producer's PutValidator as they enter the ring (the same validator serves producers in other
 * threads).
 *
 *   const store = await RingStore.open({ dir: './data' });
 *   const person = store.domain('namespace').aggregate('person');
 *   const id = store.newKey();
 *   await person.instance(id).put({ type: 'Registered', data: '{"name":"Ada"}' });
 *   const { version, events } = await person.instance(id).get();
 *   await store.close();
 */
export class RingStore implements EventStore, MetricsSource {
  readonly options: ResolvedRingStoreOptions;
  readonly #engine: RingEngine;
  /** Held from open to the end of close(), even when the store failed. */
  readonly #lock: DirectoryLock;
  readonly #keys = new KeyGenerator();
  /** Cluster mode: leases, routing and forwarding (src/api/cluster/cluster-node.ts). */
  readonly #cluster: ClusterNode | undefined;
  #closing: Promise<void> | undefined;

  private constructor(engine: RingEngine, lock: DirectoryLock, cluster: ClusterNode | undefined) {
    this.options = engine.options;
    this.#engine = engine;
    this.#lock = lock;
    this.#cluster = cluster;
    enginesOf.set(this, engine);
  }

  /**
   * Opens (creating if needed) the store in `options.dir`: validates the options, takes the
   * directory lock, starts the writer thread, which runs recovery, then builds the read index and
   * starts the CRC pool.
   */
  static open(options: RingStoreOptions): Promise<RingStore> {
    return openRingStore(options, {});
  }

  /** @internal used by openRingStore */
  static async create(options: RingStoreOptions, internals: RingEngineInternals): Promise<RingStore> {
    const resolved = resolveRingStoreOptions(options);
    const lock = DirectoryLock.acquire(resolved.dir);
    const cluster = resolved.cluster;
    let engine: RingEngine | undefined;
    try {
      engine = await RingEngine.start(
        resolved,
        internals,
        cluster && {
          servers: cluster.servers,
          nodeId: cluster.nodeId,
          namespace: cluster.namespace,
          putTimeoutMs: cluster.putTimeoutMs,
        },
      );
      // Loaded only in cluster mode: a single node never loads the NATS client.
      const node = cluster
        ? await (await import('./cluster/cluster-node.js')).ClusterNode.start(engine, cluster)
        : undefined;
      return new RingStore(engine, lock, node);
    } catch (error) {
      await engine?.close().catch(() => undefined);
      lock.release();
      throw error;
    }
  }

  /**
   * What recovery changed when this store opened: torn tails cut, unreferenced data removed (empty
   * after a clean shutdown). `ringstore serve` logs each action at start.
   */
  get recovery(): readonly RecoveryAction[] {
    return this.#engine.recovery;
  }

  /**
   * The domains whose index files this open rebuilt from the log, and why (a missing or damaged
   * checkpoint, or a damaged index file). `ringstore serve` logs each.
   */
  get indexRebuilds(): readonly IndexRebuild[] {
    return this.#engine.indexRebuilds;
  }

  get generation(): number {
    return this.#engine.generation;
  }

  /** True once the store failed (writer thread died, a write or fsync failed): puts fail with STORE_FAILED. */
  get failed(): boolean {
    return this.#engine.failed;
  }

  stats(): RingStoreStats {
    return this.#engine.stats();
  }

  /** The bounded caches of the writer thread (as of its last commit) and of this thread's reader. */
  cacheStats(): CacheStats[] {
    return this.#engine.cacheStats();
  }

  /** Every fsync/fdatasync of the writer thread since open, by duration. */
  fsyncDurations(): DurationHistogramSnapshot {
    return this.#engine.fsyncDurations();
  }

  /** The pipeline's counters, ring occupancy and CRC pool for /metrics (see StoreMetrics). */
  metrics(): StoreMetrics {
    const metrics = this.#engine.metrics();
    if (this.#cluster) metrics.cluster = this.#cluster.metrics();
    return metrics;
  }

  /**
   * Online backup into the new directory `to` (docs/OPERATIONS.md, "Backup and restore"): the
   * writer thread takes a cut between two commits (generation G, the last commit written when it
   * saw the request) and answers once the commits up to it are synced; this thread then copies the
   * log up to the cut (sealed segments hard-linked) while puts go on. The backup holds every batch
   * of generations ≤ G and nothing after; its first open rebuilds its index files.
   */
  backup(to: string, options: BackupOptions = {}): Promise<BackupReport> {
    return this.#engine.backup(to, options);
  }

  domain(name: string): Domain {
    return new Domain(this, name);
  }

  /**
   * A durable consumer of `options.domain`: its position is stored in this store and survives a
   * restart; delivery is at-least-once (src/api/consumer.ts).
   */
  consumer(name: string, options: ConsumerOptions): Consumer {
    return consumer(this, name, options);
  }

  newKey(): bigint {
    return this.#keys.next();
  }

  /**
   * A handle to post to a worker thread; there `Producer.fromHandle(handle)` gives a Producer whose
   * put() appends into this store's ring with promises of its own.
   */
  producer(): ProducerHandle {
    if (this.#cluster) {
      throw new RingStoreError(
        'INVALID_OPTION',
        'producer(): a cluster node routes each put to its domain’s owner; put through the store itself',
        { option: 'cluster' },
      );
    }
    return this.#engine.producer();
  }

  /** Cluster mode: this node's id (undefined for a single node). */
  get node(): string | undefined {
    return this.#cluster?.node;
  }

  /** Cluster mode: this node's view of domains, leases and lag (docs/CLUSTER.md, "Operations"). */
  status(): ClusterNodeStatus {
    if (!this.#cluster) {
      throw new RingStoreError('INVALID_OPTION', 'status(): only a cluster node has a cluster status', {
        option: 'cluster',
      });
    }
    return this.#cluster.status();
  }

  /**
   * Resolves once this node holds `position` of `domain`: a cluster node waits until it has applied
   * it (read-your-writes on a node other than the one written through); a single node already holds
   * everything acknowledged, so a position past its log's end fails at once. Fails with APPLY_TIMEOUT.
   */
  async waitForPosition(domain: string, position: number, timeoutMs?: number): Promise<void> {
    if (this.#cluster) return this.#cluster.waitForPosition(domain, position, timeoutMs);
    return refuseUnheldPosition(this, domain, position);
  }

  put(
    domain: string,
    aggregateType: string,
    id: AggregateIdInput,
    events: readonly EventInput[],
    options?: PutOptions,
  ): Promise<PutResult> {
    return traced(
      'put',
      () => ({
        'ringstore.domain': domain,
        'ringstore.aggregate_type': aggregateType,
        'ringstore.events': events.length,
      }),
      () =>
        this.#cluster
          ? this.#cluster.put(domain, aggregateType, id, events, options)
          : this.#engine.put(domain, aggregateType, id, events, options),
      (result) => ({
        'ringstore.first_version': result.firstVersion,
        'ringstore.first_position': result.firstPosition,
        'ringstore.generation': result.generation,
        'ringstore.replayed': result.replayed,
      }),
    );
  }

  async get(
    domain: string,
    aggregateType: string,
    id: AggregateIdInput,
    options?: GetOptions,
  ): Promise<InstanceEvents> {
    return traced(
      'get',
      () => ({ 'ringstore.domain': domain, 'ringstore.aggregate_type': aggregateType }),
      async () => {
        this.#engine.assertReadable();
        const aggregateId = validateInstanceAddress(domain, aggregateType, id);
        const read = validateInstanceRead(options);
        return this.#engine.get(domain, aggregateType, aggregateId, read);
      },
      (result) => ({ 'ringstore.version': result.version, 'ringstore.events': result.events.length }),
    );
  }

  async read(domain: string, options?: ReadOptions): Promise<DomainReadResult> {
    return traced(
      'read',
      () => ({ 'ringstore.domain': domain }),
      async () => {
        this.#engine.assertReadable();
        validateDomain(domain);
        return this.#engine.read(domain, validateReadOptions(options));
      },
      (result) => ({
        'ringstore.events': result.events.length,
        'ringstore.next_position': result.nextPosition,
      }),
    );
  }

  /** Bytes the domain's folder occupies on disk (segments count with their preallocated tails). */
  diskBytes(domain: string): Promise<number> {
    validateDomain(domain);
    return domainDiskBytes(this.options.dir, domain);
  }

  hasDomain(domain: string): boolean {
    return this.#engine.hasDomain(domain);
  }

  domains(): string[] {
    return this.#engine.domains();
  }

  /**
   * Resolves once this thread's reads see every batch committed before the call, including those
   * put by producers in other threads (their puts resolve on commit, before this thread has applied
   * the commit to its read index). Puts made on this thread need no sync: they resolve only after.
   */
  sync(): Promise<void> {
    return this.#engine.sync();
  }

  watch(listener: CommitListener): () => void {
    return this.#engine.watch(listener);
  }

  /**
   * Stops intake (new puts fail with STORE_CLOSED), lets every put already made complete, has the
   * writer thread finish (its last fsync) and ends every thread. Idempotent. Rejects with
   * STORE_FAILED if the store fails while closing; threads are ended either way.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      // A cluster node first gives up its leases (others take over at once) and leaves NATS.
      await this.#cluster?.close();
      await this.#engine.close();
    })().finally(() => this.#lock.release());
    return this.#closing;
  }
}

/** RingStore.open with internals (thread scripts, cursor start); tests import it from here. */
export function openRingStore(options: RingStoreOptions, internals: RingEngineInternals): Promise<RingStore> {
  return RingStore.create(options, internals);
}

/** The threads of an open store, for failure tests and per-thread CPU in benchmarks. */
export function ringStoreThreads(store: RingStore): RingStoreThreads {
  return enginesOf.get(store)!.threads;
}
