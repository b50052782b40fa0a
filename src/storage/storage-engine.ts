import { crcMismatch, fromWire, RingStoreError } from '../errors.js';
import { validateInstanceAddress } from '../model/address.js';
import { type CommitListener, CommitWatchers } from '../model/commit-watchers.js';
import type { AggregateIdInput, EventStore } from '../model/event-store.js';
import { eventCrc } from '../model/events.js';
import { KeyGenerator } from '../model/ids.js';
import { readInstance } from '../model/instance-read.js';
import { validateDomain } from '../model/names.js';
import { PutValidator } from '../model/put-validator.js';
import { validateInstanceRead, validateReadOptions } from '../model/queries.js';
import type {
  DomainReadResult,
  Durability,
  EventInput,
  GetOptions,
  InstanceEvents,
  PutOptions,
  PutResult,
  ReadOptions,
} from '../types.js';
import {
  type BackupOptions,
  type BackupReport,
  refuseExistingTarget,
  refuseNestedTarget,
  validateBackupOptions,
  writeBackup,
} from './backup.js';
import { DirectoryLock } from './directory-lock.js';
import { type FileIO, realFileIO } from './file-io.js';
import { StorageReader } from './reader.js';
import type { AppendBatch, AppendEvent, AppendReport, BatchHead, CacheStats } from './types.js';
import { StorageWriter } from './writer.js';

export interface StorageEngineOptions {
  io?: FileIO;
  clock?: () => number;
  /** Durability of put() (default 'fsync'). */
  durability?: Durability;
  generationBytes?: number;
  segmentBytes?: number;
  /** Zeros written ahead of the index and of data segments (docs/FORMAT.md, "Preallocation"). */
  indexExtentBytes?: number;
  dataExtentBytes?: number;
  /** Whether files grow by extents of zeros (default: only with durability 'fsync'). */
  preallocate?: boolean;
  /** Index bytes cached by the writer and by the reader each (default 8 MiB and 16 MiB). */
  indexCacheBytes?: number;
  /** Instance states the writer caches (default 100,000). */
  instanceCacheSize?: number;
  /** Index bytes between checkpoints (default 4 MiB). */
  checkpointIndexBytes?: number;
  /** Instance runs merged at a time (default 4). */
  runFanIn?: number;
}

interface PendingPut {
  batch: AppendBatch;
  resolve: (result: PutResult) => void;
  reject: (err: unknown) => void;
}

const DURABILITIES: readonly Durability[] = ['fsync', 'write', 'none'];

/**
 * StorageWriter and StorageReader in one process, behind the EventStore interface: the store
 * without the ring and the worker threads. Puts made in the same turn of the event loop share one
 * append call, hence one sync barrier (group commit); with 'fsync' the next turn's commit is written
 * while this one syncs (StorageWriter.appendOverlapped). Used by tests, by the storage bench, and as the
 * simplest embedded store.
 */
export class StorageEngine implements EventStore {
  readonly #dir: string;
  readonly #writer: StorageWriter;
  readonly #reader: StorageReader;
  readonly #durability: Durability;
  readonly #lock: DirectoryLock | undefined;
  readonly #keys = new KeyGenerator();
  readonly #validator = new PutValidator();
  readonly #watchers = new CommitWatchers();
  #pending: PendingPut[] = [];
  #flushScheduled = false;
  #closed = false;

  private constructor(
    dir: string,
    writer: StorageWriter,
    reader: StorageReader,
    durability: Durability,
    lock: DirectoryLock | undefined,
  ) {
    this.#dir = dir;
    this.#writer = writer;
    this.#reader = reader;
    this.#durability = durability;
    this.#lock = lock;
  }

  /** Opens a store directory (creating it if needed), running recovery first. */
  static open(dir: string, options: StorageEngineOptions = {}): StorageEngine {
    const durability = options.durability ?? 'fsync';
    if (!DURABILITIES.includes(durability)) {
      throw new RingStoreError('INVALID_OPTION', "durability must be 'fsync', 'write' or 'none'", {
        option: 'durability',
      });
    }
    // Only a store on the real file system can collide with another process.
    const lock =
      options.io === undefined || options.io === realFileIO ? DirectoryLock.acquire(dir) : undefined;
    let writer: StorageWriter | undefined;
    try {
      writer = StorageWriter.open(dir, {
        ...options,
        preallocate: options.preallocate ?? durability === 'fsync',
      });
      const reader = StorageReader.open(dir, {
        ...(options.io ? { io: options.io } : {}),
        ...(options.indexCacheBytes !== undefined ? { indexCacheBytes: options.indexCacheBytes } : {}),
      });
      return new StorageEngine(dir, writer, reader, durability, lock);
    } catch (err) {
      writer?.close();
      lock?.release();
      throw err;
    }
  }

  get generation(): number {
    return this.#writer.generation;
  }

  get failed(): boolean {
    return this.#writer.failed;
  }

  async put(
    domain: string,
    aggregateType: string,
    id: AggregateIdInput,
    events: readonly EventInput[],
    options?: PutOptions,
  ): Promise<PutResult> {
    this.#assertOpen();
    const {
      aggregateId,
      events: valid,
      expectedVersion,
      idempotencyKey,
    } = this.#validator.put(domain, aggregateType, id, events, options);
    const appendEvents: AppendEvent[] = new Array(valid.length);
    for (let i = 0; i < valid.length; i++) {
      const event = valid[i]!;
      const crc = eventCrc(event);
      if (event.crc !== undefined && event.crc !== crc) {
        throw crcMismatch(i);
      }
      appendEvents[i] = { type: event.type, data: event.data, metadata: event.metadata, crc };
    }
    const batch: AppendBatch = {
      domain,
      aggregateType,
      aggregateId,
      expectedVersion,
      idempotencyKey,
      events: appendEvents,
    };
    return new Promise<PutResult>((resolve, reject) => {
      this.#pending.push({ batch, resolve, reject });
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        queueMicrotask(() => this.#flush());
      }
    });
  }

  /** Appends pre-validated batches in one call (benches and tools); the caller owns validation. */
  appendMany(batches: readonly AppendBatch[], durability: Durability = this.#durability): AppendReport {
    this.#assertOpen();
    this.#flush();
    return this.#append(batches, durability);
  }

  /**
   * Online backup into the new directory `to` (src/storage/backup.ts): consistent at the generation
   * of the last commit before the call, while puts go on. Only the log is copied; the backup's
   * first open rebuilds its index files.
   */
  async backup(to: string, options: BackupOptions = {}): Promise<BackupReport> {
    this.#assertOpen();
    refuseNestedTarget(this.#dir, to);
    validateBackupOptions(options);
    refuseExistingTarget(to);
    this.#flush();
    const cut = this.#writer.cut();
    await this.#writer.whenSynced();
    return writeBackup(this.#dir, cut, to, options);
  }

  /** A domain's batches from `fromPosition` on (StorageReader.batches): for copying a store. */
  batches(domain: string, fromPosition: number, limit: number): BatchHead[] {
    this.#assertOpen();
    return this.#reader.batches(domain, fromPosition, limit);
  }

  /** The writer's caches (for metrics). */
  cacheStats(): CacheStats[] {
    return this.#writer.cacheStats();
  }

  async get(
    domain: string,
    aggregateType: string,
    id: AggregateIdInput,
    options?: GetOptions,
  ): Promise<InstanceEvents> {
    this.#assertOpen();
    const aggregateId = validateInstanceAddress(domain, aggregateType, id);
    const read = validateInstanceRead(options);
    return readInstance(read, (range) => this.#reader.get(domain, aggregateType, aggregateId, range));
  }

  async read(domain: string, options?: ReadOptions): Promise<DomainReadResult> {
    this.#assertOpen();
    validateDomain(domain);
    return this.#reader.read(domain, validateReadOptions(options));
  }

  hasDomain(domain: string): boolean {
    return this.#reader.hasDomain(domain);
  }

  domains(): string[] {
    return this.#reader.domains();
  }

  newKey(): bigint {
    return this.#keys.next();
  }

  watch(listener: CommitListener): () => void {
    return this.#watchers.add(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#flush();
    this.#closed = true;
    await this.#writer.drain();
    try {
      this.#writer.close();
    } finally {
      this.#reader.close();
      this.#lock?.release();
      this.#watchers.close(this.#writer.generation);
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new RingStoreError('STORE_CLOSED');
  }

  #flush(): void {
    this.#flushScheduled = false;
    const pending = this.#pending;
    if (pending.length === 0) return;
    this.#pending = [];
    const batches = pending.map((p) => p.batch);
    if (this.#durability === 'fsync') {
      // The next turn's puts are written while this commit syncs; results come after its barrier.
      this.#writer.appendOverlapped(batches).then(
        (report) => this.#settle(pending, this.#published(report)),
        (err: unknown) => {
          for (const p of pending) p.reject(err);
        },
      );
      return;
    }
    let report: AppendReport;
    try {
      report = this.#append(batches, this.#durability);
    } catch (err) {
      for (const p of pending) p.reject(err);
      return;
    }
    this.#settle(pending, report);
  }

  #settle(pending: PendingPut[], report: AppendReport): void {
    for (let i = 0; i < pending.length; i++) {
      const outcome = report.outcomes[i]!;
      if (outcome.ok) pending[i]!.resolve(outcome.result);
      else pending[i]!.reject(fromWire(outcome.error));
    }
  }

  #append(batches: readonly AppendBatch[], durability: Durability): AppendReport {
    return this.#published(this.#writer.append(batches, durability));
  }

  /** Makes a commit visible to reads and watchers: only once it reached its durability. */
  #published(report: AppendReport): AppendReport {
    this.#reader.apply(report.delta);
    if (report.delta.domains.length > 0 && this.#watchers.size > 0) {
      this.#watchers.notify({
        generation: report.delta.generation,
        domains: report.delta.domains.map((d) => d.domain),
      });
    }
    return report;
  }
}

/** The commit (or close) has happened: a throwing listener must not undo or fail it. */
