import type { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { fromWire, RingStoreError } from '../errors.js';
import { type CommitListener, CommitWatchers } from '../model/commit-watchers.js';
import { DurationHistogram, type DurationHistogramSnapshot } from '../model/duration-histogram.js';
import type { AggregateIdInput } from '../model/event-store.js';
import { readInstance } from '../model/instance-read.js';
import type { ValidInstanceRead, ValidReadOptions } from '../model/queries.js';
import type { ClusterWriterConfig, ClusterWriterMessage } from '../pipeline/cluster/writer-node.js';
import { CrcDispatcher } from '../pipeline/crc-dispatcher.js';
import type { CrcTask, CrcTaskResult } from '../pipeline/crc-stage.js';
import { Handoff } from '../pipeline/handoff.js';
import { Producer, type ProducerHandle } from '../pipeline/producer.js';
import { errorCodeNumber } from '../pipeline/record-results.js';
import { Ring } from '../pipeline/ring.js';
import { LIFECYCLE_CLOSED, LIFECYCLE_FAILED } from '../pipeline/ring-layout.js';
import { asyncWait } from '../pipeline/wait-strategy.js';
import {
  type BackupOptions,
  type BackupReport,
  refuseExistingTarget,
  refuseNestedTarget,
  validateBackupOptions,
  writeBackup,
} from '../storage/backup.js';
import type { LogCut } from '../storage/log-cut.js';
import type { IndexRebuild } from '../storage/open-log.js';
import { StorageReader } from '../storage/reader.js';
import type { RecoveryAction } from '../storage/recovery.js';
import type { CacheStats, CommitDelta } from '../storage/types.js';
import type { DomainReadResult, EventInput, InstanceEvents, PutOptions, PutResult } from '../types.js';
import type { CrcWorkerData } from '../workers/crc-worker-data.js';
import { compiledWorkerUrl } from '../workers/worker-url.js';
import type {
  WriterControlMessage,
  WriterWorkerData,
  WriterWorkerMessage,
} from '../workers/writer-protocol.js';
import type { StoreMetrics } from './http/metrics.js';
import type { ResolvedRingStoreOptions } from './ring-store-options.js';

/** Counters of the write pipeline since open (for benchmarks and monitoring). */
export interface RingStoreStats {
  /** Commit cycles of the writer thread (each one storage append, at most one fsync round). */
  commits: number;
  /** Batches given a final result (committed or failed). */
  batches: number;
  fsyncs: number;
  /** Seconds spent in those fsyncs, and the duration of the latest one. */
  fsyncSeconds: number;
  lastFsyncSeconds: number;
  /** Events, event data bytes and generations committed since open. */
  appendedEvents: number;
  appendedBytes: number;
  generations: number;
  /** Puts of this thread refused with BACKPRESSURE (producers in other threads count their own). */
  backpressureRejections: number;
  /** CRC tasks (ring ranges) handed to the pool. */
  crcTasks: number;
  /** CRC pool threads that died; piscina started a replacement each time. */
  crcWorkersLost: number;
}

/**
 * How an engine is built, beyond the user's options: which thread scripts it starts and where the
 * ring's cursors begin. Not public API; RingStore.open uses the defaults, tests substitute scripts
 * (test/fixtures) that inject faults, so no production path carries a test hook.
 */
export interface RingEngineInternals {
  /** The writer thread's script (default: src/workers/writer-worker.js, compiled). */
  writerScript?: URL;
  /** The CRC pool threads' script (default: src/workers/crc-worker.js, compiled). */
  crcScript?: URL;
  /** Start the ring's cursors here (a multiple of 8), e.g. near 2^31 or 2^32. */
  initialCursor?: number;
}

/** Threads of one open store, for tests that kill them. */
export interface RingStoreThreads {
  writer: Worker;
  pool: Piscina | undefined;
  ring: Ring;
}

/** How long one writer cycle may block before it re-checks everything. */
const WRITER_IDLE_WAIT_MS = 100;
/** Largest ring range in one CRC task. */
const MAX_CRC_TASK_BYTES = 4 * 1024 * 1024;
/**
 * CRC tasks in flight per pool thread when producers hand on slices (handoffBytes > 0): more than
 * one, so that a slice of a long burst can go to the pool while an earlier one is still being
 * checked; piscina posts them to the worker at once and the worker takes them in order. With
 * hand-offs only at the end of a turn, one task per thread, so that a backlog becomes one range.
 */
const SLICED_CRC_TASKS_PER_THREAD = 4;

/**
 * The private engine behind the RingStore facade (ring-store.ts), as piscina's pool is behind
 * Piscina: it owns the ring, the writer thread, the CRC pool and this thread's producer and reader,
 * and takes arguments the facade has validated. Producers write batches into the SharedArrayBuffer
 * ring, the pool checks CRCs, the writer thread appends with group commit; reads are served on this
 * thread by a StorageReader that each commit message brings up to date before puts resolve
 * (read-your-writes). This thread never blocks: it waits only with Atomics.waitAsync and messages.
 */
export class RingEngine {
  readonly options: ResolvedRingStoreOptions;
  readonly #ring: Ring;
  readonly #writer: Worker;
  readonly #pool: Piscina | undefined;
  readonly #dispatcher: CrcDispatcher | undefined;
  readonly #reader: StorageReader;
  readonly #producer: Producer;
  readonly #watchers = new CommitWatchers();
  #writerCaches: CacheStats[] = [];
  readonly #stats: RingStoreStats = {
    commits: 0,
    batches: 0,
    fsyncs: 0,
    fsyncSeconds: 0,
    lastFsyncSeconds: 0,
    appendedEvents: 0,
    appendedBytes: 0,
    generations: 0,
    backpressureRejections: 0,
    crcTasks: 0,
    crcWorkersLost: 0,
  };
  readonly #fsyncDurations = new DurationHistogram();
  #failure: RingStoreError | undefined;
  /** committedCursor of the last commit message received (its delta is applied or pending). */
  #appliedCursor: number;
  /**
   * Commit deltas received but not yet applied to the reader. Applying one takes a good share of
   * the main thread's work per commit cycle, and the next cycle waits for the puts that the
   * resolved ones trigger; so a commit message resolves its puts first and the delta is applied
   * after the turn's new puts are in the ring (setImmediate), while the CRC stage and the writer
   * work on them. Every read path applies pending deltas first, so reads still see every
   * resolved put (read-your-writes).
   */
  readonly #pendingDeltas: CommitDelta[] = [];
  #applyScheduled = false;
  readonly #applyPending = (): void => {
    this.#applyScheduled = false;
    const deltas = this.#pendingDeltas;
    if (deltas.length === 0) return;
    for (let i = 0; i < deltas.length; i++) this.#reader.apply(deltas[i]!);
    deltas.length = 0;
  };
  readonly #syncWaiters: { target: number; resolve(): void }[] = [];
  /** Backups waiting for the writer thread's cut (Ring.requestCut), oldest first. */
  readonly #cutWaiters: { request: number; resolve(cut: LogCut): void; reject(error: unknown): void }[] = [];
  #writerStopped = false;
  #closing: Promise<void> | undefined;
  #closed = false;
  /** Cluster mode: what the writer thread's cluster side reports (src/api/cluster/cluster-node.ts). */
  #clusterListener: ((message: ClusterWriterMessage) => void) | undefined;
  #recovery: readonly RecoveryAction[] = [];
  #indexRebuilds: readonly IndexRebuild[] = [];

  private constructor(
    options: ResolvedRingStoreOptions,
    ring: Ring,
    writer: Worker,
    reader: StorageReader,
    crcScript: URL,
  ) {
    this.options = options;
    this.#ring = ring;
    this.#writer = writer;
    this.#reader = reader;
    this.#appliedCursor = ring.committedCursor();
    if (options.crc === 'pool') {
      const workerData: CrcWorkerData = { sab: ring.sab };
      const tasksPerThread = options.handoffBytes > 0 ? SLICED_CRC_TASKS_PER_THREAD : 1;
      const pool = new Piscina<CrcTask, CrcTaskResult>({
        filename: crcScript.href,
        minThreads: options.crcThreads,
        maxThreads: options.crcThreads,
        idleTimeout: Number.POSITIVE_INFINITY,
        concurrentTasksPerWorker: tasksPerThread,
        workerData,
      });
      this.#pool = pool;
      const dispatcher = new CrcDispatcher(ring, {
        run: (task) => {
          this.#stats.crcTasks++;
          return pool.run(task);
        },
        maxInFlight: options.crcThreads * tasksPerThread,
        maxTaskBytes: Math.min(MAX_CRC_TASK_BYTES, ring.ringBytes / 4),
        onWorkerLost: () => {
          this.#stats.crcWorkersLost++;
        },
      });
      this.#dispatcher = dispatcher;
      const handoff = new Handoff(() => dispatcher.dispatchNow(), options.handoffBytes);
      this.#producer = new Producer(this.#handle(), {
        afterPublish: (recordBytes) => handoff.published(recordBytes),
        completion: 'external',
      });
    } else {
      const handoff = new Handoff(() => ring.wakeWriter(), options.handoffBytes);
      this.#producer = new Producer(this.#handle(), {
        afterPublish: (recordBytes) => handoff.published(recordBytes),
        completion: 'external',
      });
    }
    writer.on('message', (message: WriterWorkerMessage) => this.#onWriterMessage(message));
    writer.on('error', (error) => this.#fail(`the writer thread crashed: ${error.message}`));
    writer.on('exit', (code) => {
      if (!this.#writerStopped) this.#fail(`the writer thread exited (code ${code})`);
    });
    // Outstanding puts keep the process alive (Producer holds a timer); an idle store does not.
    writer.unref();
  }

  /** The threads of this engine, for tests that kill them and benchmarks that measure them. */
  get threads(): RingStoreThreads {
    return { writer: this.#writer, pool: this.#pool, ring: this.#ring };
  }

  /**
   * Starts the writer thread, which opens the storage in `options.dir` (running recovery), then
   * builds the read index and starts the CRC pool. The caller holds the directory lock.
   */
  static async start(
    resolved: ResolvedRingStoreOptions,
    internals: RingEngineInternals,
    cluster?: ClusterWriterConfig,
  ): Promise<RingEngine> {
    return RingEngine.#start(resolved, internals, cluster);
  }

  static async #start(
    resolved: ResolvedRingStoreOptions,
    internals: RingEngineInternals,
    cluster: ClusterWriterConfig | undefined,
  ): Promise<RingEngine> {
    const ring = Ring.create(resolved.ringBytes, internals.initialCursor ?? 0);
    const workerData: WriterWorkerData = {
      sab: ring.sab,
      dir: resolved.dir,
      durability: resolved.durability,
      generationBytes: resolved.generationBytes,
      maxBatchesPerCycle: resolved.maxBatchesPerCommit,
      idleWaitMs: WRITER_IDLE_WAIT_MS,
      idleWait: resolved.writerWait,
      claimTimeoutMs: resolved.claimTimeoutMs,
      indexCacheBytes: resolved.indexCacheBytes,
      instanceCacheSize: resolved.instanceCacheSize,
      checkpointIndexBytes: resolved.checkpointIndexBytes,
      runFanIn: resolved.runFanIn,
      ...(cluster ? { cluster } : {}),
    };
    const writerScript =
      internals.writerScript ?? compiledWorkerUrl('../workers/writer-worker.js', import.meta.url);
    const writer = new Worker(writerScript, { workerData });
    const { recovery, indexRebuilds } = await awaitWriterReady(writer).catch(async (error: unknown) => {
      await writer.terminate();
      throw error;
    });
    let reader: StorageReader;
    try {
      reader = StorageReader.open(resolved.dir, { indexCacheBytes: resolved.indexCacheBytes });
    } catch (error) {
      await writer.terminate();
      throw error;
    }
    const crcScript = internals.crcScript ?? compiledWorkerUrl('../workers/crc-worker.js', import.meta.url);
    const engine = new RingEngine(resolved, ring, writer, reader, crcScript);
    engine.#recovery = recovery;
    engine.#indexRebuilds = indexRebuilds;
    return engine;
  }

  /** What recovery changed when the store opened (see RingStore.recovery). */
  get recovery(): readonly RecoveryAction[] {
    return this.#recovery;
  }

  /** The domains whose index files this open rebuilt (see RingStore.indexRebuilds). */
  get indexRebuilds(): readonly IndexRebuild[] {
    return this.#indexRebuilds;
  }

  get generation(): number {
    this.#applyPending();
    return this.#reader.generation;
  }

  /** True once the store failed (writer thread died, a write or fsync failed): puts fail with STORE_FAILED. */
  get failed(): boolean {
    return this.#failure !== undefined || this.#ring.lifecycle() === LIFECYCLE_FAILED;
  }

  stats(): RingStoreStats {
    return { ...this.#stats, backpressureRejections: this.#producer.backpressureRejections };
  }

  /** The bounded caches of the writer thread (as of its last commit) and of this thread's reader. */
  cacheStats(): CacheStats[] {
    return [...this.#writerCaches, ...this.#reader.cacheStats()];
  }

  /** Every fsync/fdatasync of the writer thread since open, by duration. */
  fsyncDurations(): DurationHistogramSnapshot {
    return this.#fsyncDurations.snapshot();
  }

  /** The pipeline's counters, ring occupancy and CRC pool for /metrics (see StoreMetrics). */
  metrics(): StoreMetrics {
    const stats = this.stats();
    const ring = this.#ring;
    const pool = this.#pool;
    // Bytes between the reclaim point and the claim point are in use (cursors wrap: >>> 0).
    return {
      appendedBatches: stats.batches,
      appendedEvents: stats.appendedEvents,
      appendedBytes: stats.appendedBytes,
      generations: stats.generations,
      commits: stats.commits,
      fsyncs: stats.fsyncs,
      fsyncSecondsTotal: stats.fsyncSeconds,
      fsyncSecondsLast: stats.lastFsyncSeconds,
      fsyncDurations: this.fsyncDurations(),
      backpressureRejections: stats.backpressureRejections,
      ringBytes: ring.ringBytes,
      ringUsedBytes: ring.usedBytes(),
      crcThreads: pool ? this.options.crcThreads : 0,
      caches: this.cacheStats(),
      ...(pool ? { crcUtilization: pool.utilization } : {}),
    };
  }

  /**
   * A handle to post to a worker thread; there `Producer.fromHandle(handle)` gives a Producer whose
   * put() appends into this store's ring with promises of its own.
   */
  producer(): ProducerHandle {
    this.#dispatcher?.watchOtherThreads();
    return this.#handle();
  }

  /** The producer of this thread validates the put (PutValidator) as it enters the ring. */
  put(
    domain: string,
    aggregateType: string,
    id: AggregateIdInput,
    events: readonly EventInput[],
    options?: PutOptions,
  ): Promise<PutResult> {
    if (this.#failure) return Promise.reject(this.#failure);
    return this.#producer.put(domain, aggregateType, id, events, options);
  }

  get(domain: string, aggregateType: string, aggregateId: bigint, read: ValidInstanceRead): InstanceEvents {
    this.assertReadable();
    this.#applyPending();
    return readInstance(read, (range) => this.#reader.get(domain, aggregateType, aggregateId, range));
  }

  read(domain: string, options: ValidReadOptions): DomainReadResult {
    this.assertReadable();
    this.#applyPending();
    return this.#reader.read(domain, options);
  }

  hasDomain(domain: string): boolean {
    this.#applyPending();
    return this.#reader.hasDomain(domain);
  }

  domains(): string[] {
    this.#applyPending();
    return this.#reader.domains();
  }

  /**
   * Resolves once this thread's reads see every batch committed before the call, including those
   * put by producers in other threads (their puts resolve on commit, before this thread has applied
   * the commit to its read index). Puts made on this thread need no sync: they resolve only after.
   */
  sync(): Promise<void> {
    const target = this.#ring.committedCursor();
    if (((this.#appliedCursor - target) | 0) >= 0 || this.failed || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#syncWaiters.push({ target, resolve }));
  }

  watch(listener: CommitListener): () => void {
    return this.#watchers.add(listener);
  }

  /** Cluster mode: receives the writer thread's cluster messages (one listener). */
  onCluster(listener: (message: ClusterWriterMessage) => void): void {
    this.#clusterListener = listener;
  }

  /** Cluster mode: a request to the writer thread's cluster side. */
  control(message: WriterControlMessage): void {
    if (this.#closing || this.#closed || this.#failure) return;
    this.#writer.postMessage(message);
  }

  /**
   * See RingStore.backup: the writer thread takes a cut between two commits (generation G, the last
   * commit written when it saw the request) and answers once the commits up to it are synced; this
   * thread then copies the log up to the cut while puts go on.
   */
  async backup(to: string, options: BackupOptions): Promise<BackupReport> {
    if (this.#closing || this.#closed) throw new RingStoreError('STORE_CLOSED');
    if (this.#failure) throw this.#failure;
    refuseNestedTarget(this.options.dir, to);
    validateBackupOptions(options);
    refuseExistingTarget(to);
    const cut = await this.#requestCut();
    return writeBackup(this.options.dir, cut, to, options);
  }

  /** Asks the writer thread for a log cut; its 'cut' message answers. */
  #requestCut(): Promise<LogCut> {
    const waiting = new Promise<LogCut>((resolve, reject) => {
      this.#cutWaiters.push({ request: this.#ring.requestCut(), resolve, reject });
    });
    // The answer is a message: keep the process alive for it, as an outstanding put does.
    this.#writer.ref();
    const settled = () => {
      if (this.#cutWaiters.length === 0 && !this.#closing) this.#writer.unref();
    };
    waiting.then(settled, settled);
    return waiting;
  }

  /** Settles every cut request up to `request` (wrap-safe) with the cut or the error. */
  #answerCuts(request: number, answer: { cut?: LogCut; error?: unknown }): void {
    const waiters = this.#cutWaiters;
    while (waiters.length > 0 && ((request - waiters[0]!.request) | 0) >= 0) {
      const waiter = waiters.shift()!;
      if (answer.cut) waiter.resolve(answer.cut);
      else waiter.reject(answer.error);
    }
  }

  /** See RingStore.close: idempotent; the facade releases the directory lock after it. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const ring = this.#ring;
    const writer = this.#writer;
    const failedBefore = this.failed;
    writer.ref();
    ring.beginClosing();
    await this.#drain();
    this.#writerStopped = true;
    if (writer.threadId >= 0 && !this.failed) {
      const stopped = new Promise<void>((resolve) => {
        const onMessage = (message: WriterWorkerMessage) => {
          if (message.type === 'stopped' || message.type === 'failed') resolve();
        };
        writer.on('message', onMessage);
        writer.once('exit', () => resolve());
      });
      ring.requestWriterStop();
      await stopped;
    }
    if (writer.threadId >= 0) await writer.terminate();
    this.#dispatcher?.stop();
    await this.#pool?.destroy();
    this.#applyPending();
    this.#reader.close();
    if (ring.lifecycle() !== LIFECYCLE_FAILED) ring.setLifecycle(LIFECYCLE_CLOSED);
    this.#producer.failOutstanding(this.#failure ?? new RingStoreError('STORE_CLOSED'));
    this.#closed = true;
    this.#releaseSyncWaiters(true);
    this.#answerCuts(ring.cutRequests(), { error: this.#failure ?? new RingStoreError('STORE_CLOSED') });
    this.#watchers.close(this.#reader.generation);
    // A store that failed before close() closes quietly; a failure while closing (the last fsync)
    // is reported, since the data written since the last acknowledged put may not be durable.
    if (!failedBefore && this.#failure) throw this.#failure;
  }

  /** Waits until everything claimed is committed and this thread's puts are settled (bounded). */
  async #drain(): Promise<void> {
    const ring = this.#ring;
    const deadline = Date.now() + Math.max(this.options.backpressureTimeoutMs, 5_000) + 5_000;
    while (!this.failed && Date.now() < deadline) {
      const committed = ring.committedCursor();
      if (committed === ring.claimCursor() && this.#producer.outstanding === 0) return;
      const outcome = ring.waitForCommits(committed, 20, asyncWait);
      if (typeof outcome === 'string') await new Promise((resolve) => setImmediate(resolve));
      else await outcome;
    }
  }

  #handle(): ProducerHandle {
    return Object.freeze({
      kind: 'ringstore.producer' as const,
      sab: this.#ring.sab,
      crc: this.options.crc,
      backpressureTimeoutMs: this.options.backpressureTimeoutMs,
      maxWaitingPuts: this.options.maxWaitingPuts,
      handoffBytes: this.options.handoffBytes,
    });
  }

  #onWriterMessage(message: WriterWorkerMessage): void {
    if (typeof message !== 'object' || message === null) {
      this.#fail(unexpectedWriterMessage(message, 'after start-up'));
      return;
    }
    switch (message.type) {
      case 'commit': {
        this.#stats.commits++;
        this.#stats.batches += message.batches;
        this.#stats.fsyncs += message.fsyncs;
        this.#stats.appendedEvents += message.appendedEvents;
        this.#stats.appendedBytes += message.appendedBytes;
        this.#stats.generations += message.generations;
        if (message.caches) this.#writerCaches = message.caches;
        for (const seconds of message.syncSeconds) {
          this.#fsyncDurations.observe(seconds);
          this.#stats.fsyncSeconds += seconds;
          this.#stats.lastFsyncSeconds = seconds;
        }
        if (message.delta) this.#queueDelta(message.delta);
        this.#appliedCursor = message.committedCursor;
        this.#producer.completeReady(message.committedCursor);
        this.#releaseSyncWaiters(false);
        if (message.delta) this.#notifyWatchers(message.delta);
        return;
      }
      case 'replicated': {
        // A generation the writer thread's cluster side committed (docs/CLUSTER.md, "Followers").
        // The cluster side counts it before a read or watcher can see it (status, lag).
        this.#clusterListener?.(message);
        this.#stats.fsyncs += message.fsyncs;
        this.#stats.appendedEvents += message.appendedEvents;
        this.#stats.appendedBytes += message.appendedBytes;
        this.#stats.generations += message.generations;
        this.#writerCaches = message.caches;
        for (const seconds of message.syncSeconds) {
          this.#fsyncDurations.observe(seconds);
          this.#stats.fsyncSeconds += seconds;
          this.#stats.lastFsyncSeconds = seconds;
        }
        this.#queueDelta(message.delta);
        this.#notifyWatchers(message.delta);
        return;
      }
      case 'owning':
      case 'own-failed':
      case 'stepped-down':
      case 'published':
      case 'cluster-status':
        if (this.#clusterListener) this.#clusterListener(message);
        else this.#fail(unexpectedWriterMessage(message, 'outside cluster mode'));
        return;
      case 'cut':
        this.#answerCuts(message.request, {
          cut: message.cut,
          error: message.error ? fromWire(message.error) : undefined,
        });
        return;
      case 'failed':
        this.#fail(fromWire(message.error).message);
        return;
      case 'stopped':
        // The answer to close()'s stop request, which close() awaits itself.
        return;
      default:
        // 'ready' and 'open-failed' come only before the store opens; anything else is not in the
        // protocol. Either way the two threads no longer agree on what happened: fail at once.
        this.#fail(unexpectedWriterMessage(message, 'after start-up'));
        return;
    }
  }

  /** Queues a commit's delta for the reader (applied after this turn, or by the next read). */
  #queueDelta(delta: CommitDelta): void {
    this.#pendingDeltas.push(delta);
    if (!this.#applyScheduled) {
      this.#applyScheduled = true;
      setImmediate(this.#applyPending);
    }
  }

  #notifyWatchers(delta: CommitDelta): void {
    if (delta.domains.length === 0 || this.#watchers.size === 0) return;
    this.#applyPending();
    this.#watchers.notify({
      generation: this.#reader.generation,
      domains: delta.domains.map((d) => d.domain),
    });
  }

  #releaseSyncWaiters(all: boolean): void {
    const waiters = this.#syncWaiters;
    for (let i = 0; i < waiters.length; ) {
      if (all || ((this.#appliedCursor - waiters[i]!.target) | 0) >= 0) waiters.splice(i, 1)[0]!.resolve();
      else i++;
    }
  }

  /** Enters the failed state: nothing more is acknowledged; every unsettled put rejects. */
  #fail(cause: string): void {
    if (this.#failure) return;
    this.#failure = new RingStoreError(
      'STORE_FAILED',
      `the store has failed and accepts no more writes: ${cause}`,
    );
    this.#ring.fail(errorCodeNumber('STORE_FAILED'));
    this.#dispatcher?.stop();
    this.#producer.failOutstanding(this.#failure);
    this.#releaseSyncWaiters(true);
    this.#answerCuts(this.#ring.cutRequests(), { error: this.#failure });
  }

  assertReadable(): void {
    if (this.#closed || this.#ring.lifecycle() === LIFECYCLE_CLOSED) throw new RingStoreError('STORE_CLOSED');
  }
}

/** What the writer thread reported in its 'ready' message. */
export interface WriterReady {
  recovery: readonly RecoveryAction[];
  indexRebuilds: readonly IndexRebuild[];
}

/**
 * Waits for the writer thread's start-up answer: 'ready' (storage open, recovery done) or
 * 'open-failed'. Any other message, an error or an exit rejects with STORE_FAILED.
 */
export function awaitWriterReady(writer: Pick<EventEmitter, 'on' | 'off'>): Promise<WriterReady> {
  return new Promise<WriterReady>((resolve, reject) => {
    const onMessage = (message: WriterWorkerMessage) => {
      if (message?.type === 'ready') {
        done(undefined, {
          recovery: Object.freeze(message.recovery.map((action) => Object.freeze(action))),
          indexRebuilds: Object.freeze(message.indexRebuilds.map((rebuild) => Object.freeze(rebuild))),
        });
      } else if (message?.type === 'open-failed') done(fromWire(message.error));
      else done(new RingStoreError('STORE_FAILED', unexpectedWriterMessage(message, "before 'ready'")));
    };
    const onError = (error: Error) =>
      done(new RingStoreError('STORE_FAILED', `writer thread: ${error.message}`));
    const onExit = (code: number) =>
      done(new RingStoreError('STORE_FAILED', `writer thread exited (${code})`));
    const done = (error: RingStoreError | undefined, ready?: WriterReady) => {
      writer.off('message', onMessage).off('error', onError).off('exit', onExit);
      if (error) reject(error);
      else resolve(ready!);
    };
    writer.on('message', onMessage).on('error', onError).on('exit', onExit);
  });
}

/** Describes a message the writer protocol does not allow at this point (its type only). */
function unexpectedWriterMessage(message: unknown, when: string): string {
  const type =
    typeof message === 'object' && message !== null && 'type' in message
      ? JSON.stringify(String((message as { type: unknown }).type))
      : `a ${message === null ? 'null' : typeof message} without a type`;
  return `the writer thread sent an unexpected message ${when} (type ${type})`;
}
