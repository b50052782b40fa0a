import { RingStoreError } from '../errors.js';
import { DEFAULT_GENERATION_BYTES } from '../model/limits.js';
import { STORAGE_NAME_PATTERN } from '../model/names.js';
import type { Durability, PutResult } from '../types.js';
import { admit, invalidName } from './admission.js';
import { AppendFile } from './append-file.js';
import { BlockCache } from './block-cache.js';
import { refuseIncomplete } from './build-marker.js';
import { CHECKPOINT_FILE, type Checkpoint } from './checkpoint.js';
import {
  DEFAULT_CHECKPOINT_INDEX_BYTES,
  DEFAULT_RUN_FAN_IN,
  DomainIndex,
  type IndexPolicy,
} from './domain-index.js';
import { eventListOf } from './event-list.js';
import { type FileIO, realFileIO } from './file-io.js';
import {
  DEFAULT_DATA_EXTENT_BYTES,
  DEFAULT_INDEX_EXTENT_BYTES,
  DEFAULT_SEGMENT_BYTES,
  domainDir,
  INDEX_FILE,
  joinPath,
  MAX_SEGMENT_BYTES,
  REGISTRY_FILE,
  segmentFileName,
} from './format.js';
import { packGenerations } from './generation-packing.js';
import { encodeIndexRecord, indexRecordBytes } from './index-record.js';
import { readIndexRecordAt } from './index-record-io.js';
import { InstanceCache, type InstanceState } from './instance-cache.js';
import type { LogCut } from './log-cut.js';
import { type AggregateTypeState, type DomainState, newDomainState } from './log-state.js';
import { NameRegistry } from './name-registry.js';
import { type IndexRebuild, openLog } from './open-log.js';
import type { RecoveryAction } from './recovery.js';
import { encodeRegistryRecord, registryRecordBytes } from './registry-record.js';
import { encodeSegmentHeader, SEGMENT_HEADER_BYTES } from './segment-header.js';
import { integerOption } from './storage-options.js';
import type {
  AppendBatch,
  AppendOutcome,
  AppendReport,
  CacheStats,
  CommitDelta,
  DomainTip,
  EventList,
  GenerationStamp,
} from './types.js';

export interface StorageWriterOptions {
  io?: FileIO;
  /** Source of timestamps (ms); the writer never lets them decrease. Default Date.now. */
  clock?: () => number;
  /** Most encoded batch bytes per generation (default 4096). */
  generationBytes?: number;
  /** Size at which a data segment is rolled (default 64 MiB). */
  segmentBytes?: number;
  /** Zeros written ahead of the index (default 1 MiB) and of data segments (default 4 MiB). */
  indexExtentBytes?: number;
  dataExtentBytes?: number;
  /**
   * Whether files grow by extents of zeros written ahead (default true). They pay off only for
   * commits that fdatasync (docs/FORMAT.md, "Preallocation"); a store whose commits do not sync
   * turns them off, since they write every byte twice.
   */
  preallocate?: boolean;
  /** Bytes of index files (runs, positions) the writer keeps in memory (default 8 MiB). */
  indexCacheBytes?: number;
  /** Instance states (version, idempotency keys) the writer keeps in memory (default 100,000). */
  instanceCacheSize?: number;
  /** A domain's index is checkpointed after this many index bytes (default 4 MiB) and at close. */
  checkpointIndexBytes?: number;
  /** Runs merged at a time (default 4). */
  runFanIn?: number;
  /**
   * Open a store that a tool is still building (its INCOMPLETE marker is there): only the tool
   * that wrote the marker passes this (build-marker.ts); every other open refuses such a store.
   */
  building?: boolean;
}

/** A batch with the generation and timestamp it had in the store it comes from (repartition). */
export interface RecordedBatch extends AppendBatch {
  generation: number;
  timestamp: number;
}

export const DEFAULT_WRITER_INDEX_CACHE_BYTES = 8 * 1024 * 1024;
/**
 * Merge work per batch appended: a batch's entry is merged about log_fanIn(batches / checkpoint
 * size) times in its life (fewer than 8 below a billion batches at the defaults).
 */
const MERGE_ENTRIES_PER_BATCH = 8;
const MERGE_MIN_ENTRIES = 1024;
export const DEFAULT_INSTANCE_CACHE_SIZE = 100_000;
/**
 * Zeros one writeZerosAhead call writes at most: short enough not to hold up a commit that becomes
 * ready meanwhile (docs/FORMAT.md, "Preallocation", has the paired runs).
 */
const ZEROS_AHEAD_CHUNK_BYTES = 64 * 1024;

/** The bytes one append call adds to one data segment file. */
interface DataTarget {
  domain: DomainState;
  aggregateType: AggregateTypeState;
  segment: number;
  fileStart: number;
  length: number;
  arenaOffset: number;
}

interface AcceptedBatch {
  /** Position of the batch in the append call. */
  index: number;
  batch: AppendBatch;
  /** The batch's events, read by index. */
  events: EventList;
  domain: DomainState;
  aggregateType: AggregateTypeState;
  target: DataTarget;
  codesStart: number;
  /** Offset of the batch's record in the domain's index file (set by #encode). */
  indexOffset: number;
  dataOffset: number;
  /** Stored bytes of the batch (data and metadata of its events). */
  dataLength: number;
  key: Uint8Array | undefined;
  result: PutResult;
}

const utf8 = new TextEncoder();

/**
 * Applies batches to the files of a store directory (docs/FORMAT.md). One StorageWriter owns a
 * directory: it is the single point that checks expected versions and idempotency keys, so its
 * decisions are linearisable.
 *
 * One append call is one commit:
 *   admit   per batch in order (admission.ts); later batches see earlier ones
 *   pack    admitted batches into generations (packGenerations), stamp generation and timestamp
 *   encode  index records per domain and payloads per data file into buffers
 *   write   new registry records, payloads (one write per data file), index records (one write per
 *           domain), all into preallocated space (append-file.ts)
 *   sync    with 'fsync': ONE barrier — every file with unsynced bytes is fdatasync'ed, none
 *           written in between — and only then are results returned. Records vouch for the index
 *           bytes synced before them (syncedEnd), which is what lets recovery cut any unsynced
 *           tail and still catch damage to synced bytes.
 *
 * Any write or fsync error fails the writer for good: fsync errors are never retried, because after
 * one the kernel may have dropped the dirty pages and a retry can report success over lost data.
 */
export class StorageWriter {
  readonly #root: string;
  readonly #io: FileIO;
  readonly #clock: () => number;
  readonly #generationBytes: number;
  readonly #segmentBytes: number;
  readonly #indexExtentBytes: number;
  readonly #dataExtentBytes: number;
  readonly #domains = new Map<string, DomainState>();
  readonly #cache: BlockCache;
  readonly #instances: InstanceCache;
  readonly #policy: IndexPolicy;
  readonly #recovery: RecoveryAction[] = [];
  readonly #indexRebuilds: IndexRebuild[] = [];
  #generation = 0;
  #lastTimestamp = 0;
  #failure: RingStoreError | undefined;
  #closed = false;
  /** Files with bytes written since their last sync. */
  readonly #dirty = new Set<AppendFile>();
  // Reused across calls so the hot path does not allocate per event.
  #arena = new Uint8Array(1 << 20);
  #codes = new Uint16Array(4096);
  readonly #sizes: number[] = [];
  readonly #ends: number[] = [];
  /** Durations of the syncs of the current append call (seconds). */
  #syncSeconds: number[] = [];
  /** Settles when every overlapped commit so far has synced; rejects once one failed. */
  #inFlight: Promise<void> = Promise.resolve();
  /** Segment files let go of while an overlapped sync may still use their descriptor. */
  readonly #retired: AppendFile[] = [];
  /** Open files that last wanted zeros ahead (writeZerosAhead). */
  readonly #zerosWanted = new Set<AppendFile>();
  /** Overlapped commits whose syncs have not settled. */
  #overlapping = 0;
  /** Files an overlapped sync is running on (with how many): a barrier syncs them again. */
  readonly #syncing = new Map<AppendFile, number>();

  private constructor(root: string, io: FileIO, options: StorageWriterOptions) {
    this.#root = root;
    this.#io = io;
    this.#clock = options.clock ?? Date.now;
    this.#generationBytes = integerOption(
      'generationBytes',
      options.generationBytes ?? DEFAULT_GENERATION_BYTES,
      1,
    );
    this.#segmentBytes = integerOption(
      'segmentBytes',
      options.segmentBytes ?? DEFAULT_SEGMENT_BYTES,
      1,
      MAX_SEGMENT_BYTES,
    );
    const indexExtentBytes = integerOption(
      'indexExtentBytes',
      options.indexExtentBytes ?? DEFAULT_INDEX_EXTENT_BYTES,
      1,
    );
    const dataExtentBytes = integerOption(
      'dataExtentBytes',
      options.dataExtentBytes ?? DEFAULT_DATA_EXTENT_BYTES,
      1,
    );
    // An extent of 0 makes AppendFile append without zeros ahead.
    const preallocate = options.preallocate ?? true;
    this.#indexExtentBytes = preallocate ? indexExtentBytes : 0;
    this.#dataExtentBytes = preallocate ? dataExtentBytes : 0;
    this.#cache = new BlockCache(
      integerOption('indexCacheBytes', options.indexCacheBytes ?? DEFAULT_WRITER_INDEX_CACHE_BYTES, 0),
    );
    this.#instances = new InstanceCache(
      integerOption('instanceCacheSize', options.instanceCacheSize ?? DEFAULT_INSTANCE_CACHE_SIZE, 1),
    );
    this.#policy = {
      checkpointIndexBytes: integerOption(
        'checkpointIndexBytes',
        options.checkpointIndexBytes ?? DEFAULT_CHECKPOINT_INDEX_BYTES,
        1,
      ),
      runFanIn: integerOption('runFanIn', options.runFanIn ?? DEFAULT_RUN_FAN_IN, 2, 64),
    };
  }

  /** Opens (creating if needed) a store directory and runs recovery on every domain in it. */
  static open(dir: string, options: StorageWriterOptions = {}): StorageWriter {
    const io = options.io ?? realFileIO;
    if (options.building !== true) refuseIncomplete(io, dir);
    const writer = new StorageWriter(dir, io, options);
    const log = openLog(io, dir, writer.#cache, writer.#policy);
    for (const domain of log.domains) writer.#domains.set(domain.name, domain);
    writer.#recovery.push(...log.actions);
    writer.#indexRebuilds.push(...log.rebuilds);
    writer.#generation = log.generation;
    writer.#lastTimestamp = log.lastTimestamp;
    return writer;
  }

  /** The last generation written (0 before any). */
  get generation(): number {
    return this.#generation;
  }

  get lastTimestamp(): number {
    return this.#lastTimestamp;
  }

  get failed(): boolean {
    return this.#failure !== undefined;
  }

  /** What recovery changed on open: bytes cut and moved aside, with sizes and reasons. */
  get recovery(): readonly RecoveryAction[] {
    return this.#recovery;
  }

  /** The domains whose index files open rebuilt from the log, and why. */
  get indexRebuilds(): readonly IndexRebuild[] {
    return this.#indexRebuilds;
  }

  /** The current version of an instance (0 when it has no events). */
  version(domain: string, aggregateType: string, id: bigint): number {
    const d = this.#domains.get(domain);
    const code = d?.registry.aggregateCode(aggregateType) ?? -1;
    if (!d || code < 0) return 0;
    const state = this.#stateOf(d, d.aggregateTypes[code]!, id, false);
    this.#instances.trim();
    return state.version;
  }

  /** Sizes and hit counts of the writer's caches (for metrics). */
  cacheStats(): CacheStats[] {
    const index = this.#cache.stats();
    const instances = this.#instances.stats();
    return [
      {
        cache: 'writer-index',
        size: index.bytes,
        capacity: index.capacityBytes,
        unit: 'bytes',
        hits: index.hits,
        misses: index.misses,
      },
      {
        cache: 'instances',
        size: instances.size,
        capacity: instances.capacity,
        unit: 'entries',
        hits: instances.hits,
        misses: instances.misses,
      },
    ];
  }

  /**
   * One commit. With `stamp` (a replica applying a generation decided elsewhere: src/pipeline/cluster)
   * every accepted batch gets exactly the stamp's generation and timestamp, however many bytes they
   * hold, so that every replica numbers and times them alike; the stamp may not go back in any
   * domain of the call.
   */
  append(batches: readonly AppendBatch[], durability: Durability, stamp?: GenerationStamp): AppendReport {
    return this.#append(batches, durability, stamp, undefined);
  }

  /**
   * Appends batches with the generation and timestamp each already has, instead of packing them
   * into new generations: the write path of the repartition tool (src/storage/repartition.ts),
   * which copies batches into a new store and keeps their generations and timestamps. Within a
   * domain they must not decrease (the format's rule); across domains they may. Never reachable
   * from the application API: RingStore and StorageEngine only append through append().
   */
  appendRecorded(batches: readonly RecordedBatch[], durability: Durability): AppendReport {
    this.#checkRecorded(batches);
    return this.#append(batches, durability, undefined, batches);
  }

  /**
   * The cut a backup copies (src/storage/backup.ts): every domain's registry and index ends and
   * each aggregate type's data end after the last commit written so far, with its generation G.
   * The log below those ends holds exactly the batches of generations ≤ G, and is never written
   * again (files only grow past them). Overlapped commits up to the cut may still be syncing:
   * whenSynced() (or, on the writer thread, the settling of the commits staged so far) tells when
   * the cut holds acknowledged commits only.
   */
  cut(): LogCut {
    if (this.#closed) throw new RingStoreError('STORE_CLOSED');
    if (this.#failure) throw this.#failure;
    const cut: LogCut = { generation: this.#generation, lastTimestamp: this.#lastTimestamp, domains: [] };
    for (const domain of this.#domains.values()) {
      if (!domain.folderExists) continue;
      cut.domains.push({
        domain: domain.name,
        registryEnd: domain.registryEnd,
        indexEnd: domain.indexEnd,
        nextPosition: domain.nextPosition,
        dataEnds: domain.aggregateTypes.map((t) => ({
          aggregateType: t.name,
          segment: t.segment,
          end: t.end,
        })),
      });
    }
    return cut;
  }

  /**
   * Writes one chunk (64 KiB at most) of the zeros ahead that a file wants (AppendFile.zerosWanted),
   * for a moment when the caller would otherwise wait: the writer thread calls it while it waits for
   * a sync or for work, so that commits rarely write an extent of zeros in their own path. One call
   * writes into one file; a commit that leaves several files short of zeros needs as many idle
   * moments (until then an append extends in its path, as without this). Returns whether it wrote;
   * false when no file wants zeros (or the writer is closed or failed). A failed write fails the
   * writer, as any write does.
   */
  writeZerosAhead(): boolean {
    if (this.#closed || this.#failure) return false;
    for (const file of this.#zerosWanted) {
      if (!file.zerosWanted) {
        this.#zerosWanted.delete(file);
        continue;
      }
      try {
        file.writeZerosAhead(ZEROS_AHEAD_CHUNK_BYTES);
      } catch (err) {
        this.#fail(err);
      }
      // Not added to #dirty: nothing vouches for zeros, so they wait for the file's next sync (a
      // commit with fsync that writes to it, a segment roll, close), which covers them through the
      // file's own dirty flag, instead of making every commit sync the file.
      return true;
    }
    return false;
  }

  /** Resolves once every overlapped commit so far has synced; rejects with the failure when one failed. */
  whenSynced(): Promise<void> {
    return this.#inFlight.then(
      () => undefined,
      () => {
        throw this.#failure ?? new RingStoreError('STORE_FAILED');
      },
    );
  }

  /** A commit whose batches get new generations, one stamp's, or each its recorded one. */
  #append(
    batches: readonly AppendBatch[],
    durability: Durability,
    stamp: GenerationStamp | undefined,
    recorded: readonly RecordedBatch[] | undefined,
  ): AppendReport {
    if (this.#closed) throw new RingStoreError('STORE_CLOSED');
    if (this.#failure) throw this.#failure;
    if (stamp) this.#checkStamp(batches, stamp);
    if (this.#overlapping === 0) for (const file of this.#retired.splice(0)) file.close();
    const outcomes: AppendOutcome[] = new Array(batches.length);
    const replays: { index: number; original: PutResult }[] = [];
    const accepted: AcceptedBatch[] = [];
    const touched: DomainState[] = [];
    const targets: DataTarget[] = [];
    const targetOf = new Map<AggregateTypeState, DataTarget>();
    let codesUsed = 0;

    for (let i = 0; i < batches.length; i++) {
      const batch = batches[i]!;
      const domain = this.#domains.get(batch.domain) ?? this.#newDomain(batch.domain);
      if (!domain) {
        outcomes[i] = { ok: false, error: invalidName('domain', batch.domain).toWire() };
        continue;
      }
      const events = eventListOf(batch.events);
      if (codesUsed + events.length > this.#codes.length) {
        const grown = new Uint16Array(Math.max(this.#codes.length * 2, codesUsed + events.length));
        grown.set(this.#codes.subarray(0, codesUsed));
        this.#codes = grown;
      }
      const admission = admit(domain, batch, events, this.#codes, codesUsed, (code, withKeys) =>
        this.#stateOf(domain, domain.aggregateTypes[code]!, batch.aggregateId, withKeys),
      );
      if (admission.kind === 'refused') {
        outcomes[i] = { ok: false, error: admission.error.toWire() };
        continue;
      }
      if (admission.kind === 'replayed') {
        replays.push({ index: i, original: admission.original });
        continue;
      }
      if (!domain.inCall) {
        domain.inCall = true;
        touched.push(domain);
      }
      const dataLength = admission.storedBytes;
      const aggregateType = domain.aggregateTypes[admission.aggregateTypeCode]!;
      const state = admission.instance ?? this.#stateOf(domain, aggregateType, batch.aggregateId, false);
      // A batch with no stored bytes never rolls: it would move the type to a segment no file holds,
      // and the segment it leaves would not be synced as a roll syncs it.
      if (
        dataLength > 0 &&
        aggregateType.end > SEGMENT_HEADER_BYTES &&
        aggregateType.end + dataLength > this.#segmentBytes
      ) {
        aggregateType.segment++;
        aggregateType.end = SEGMENT_HEADER_BYTES;
      }
      let target = targetOf.get(aggregateType);
      if (!target || target.segment !== aggregateType.segment) {
        target = {
          domain,
          aggregateType,
          segment: aggregateType.segment,
          fileStart: aggregateType.end,
          length: 0,
          arenaOffset: 0,
        };
        targetOf.set(aggregateType, target);
        targets.push(target);
      }
      const key = batch.idempotencyKey === undefined ? undefined : utf8.encode(batch.idempotencyKey);
      const version = admission.version;
      const result: PutResult = {
        firstVersion: version + 1,
        lastVersion: version + events.length,
        firstPosition: domain.nextPosition,
        generation: 0,
        timestamp: 0,
        durability,
        replayed: false,
      };
      accepted.push({
        index: i,
        batch,
        events,
        domain,
        aggregateType,
        target,
        codesStart: codesUsed,
        indexOffset: 0,
        dataOffset: aggregateType.end,
        dataLength,
        key,
        result,
      });
      codesUsed += events.length;
      state.version += events.length;
      domain.nextPosition += events.length;
      aggregateType.end += dataLength;
      target.length += dataLength;
      const recordBytes = indexRecordBytes(key?.byteLength ?? 0, events.length);
      domain.pendingIndexBytes += recordBytes;
      this.#sizes.push(recordBytes + dataLength);
      if (batch.idempotencyKey !== undefined) {
        state.keys ??= new Map();
        state.keys.set(batch.idempotencyKey, result);
      }
    }

    const generationBefore = this.#generation;
    this.#syncSeconds = [];
    if (stamp) this.#applyStamp(accepted, stamp);
    else if (recorded) this.#stampRecorded(accepted, recorded);
    else this.#stampGenerations(accepted);
    const reached: Durability = durability === 'fsync' ? 'fsync' : 'write';
    let fsyncs = 0;
    const delta: CommitDelta = { generation: this.#generation, domains: [] };
    try {
      if (accepted.length > 0) {
        const indexBuffers = this.#encode(accepted, touched, targets);
        fsyncs = this.#write(touched, targets, indexBuffers, durability === 'fsync', delta);
      }
      for (const item of accepted) this.#index(item);
      for (const domain of touched) {
        if (!domain.index.due(domain.indexEnd)) continue;
        const made = this.#checkpoint(domain);
        fsyncs += made.fsyncs;
        const entry = delta.domains.find((d) => d.domain === domain.name);
        if (entry) entry.checkpoint = made.checkpoint;
      }
      for (const domain of touched) this.#advanceMerge(domain, accepted.length);
    } catch (err) {
      this.#fail(err);
    } finally {
      for (const domain of touched) {
        domain.inCall = false;
        domain.pendingNames.length = 0;
        domain.pendingIndexBytes = 0;
      }
      this.#sizes.length = 0;
      this.#instances.trim();
    }
    let appendedEvents = 0;
    let appendedBytes = 0;
    for (const item of accepted) {
      item.result.durability = reached;
      // A keyed result is also kept for replays (state.keys), so the caller gets a copy of it.
      const result = item.key === undefined ? item.result : { ...item.result };
      outcomes[item.index] = { ok: true, result };
      appendedEvents += item.batch.events.length;
      appendedBytes += item.dataLength;
    }
    for (const { index, original } of replays) {
      outcomes[index] = { ok: true, result: { ...original, durability: reached, replayed: true } };
    }
    return {
      outcomes,
      delta,
      durability: reached,
      fsyncs,
      syncSeconds: this.#syncSeconds,
      appendedEvents,
      appendedBytes,
      generations: this.#generation - generationBefore,
      caches: this.cacheStats(),
    };
  }

  /**
   * One commit whose barrier runs off this thread, so that the caller can admit, encode and write
   * the next commit while this one syncs (two or more commits in flight). The writes happen now,
   * as in append; the returned promise resolves with results at durability 'fsync' once every
   * sync of this commit and of every commit before it has returned, and only then do the next
   * records vouch for its bytes. A failed sync fails the writer and rejects this commit and every
   * later one. Call drain() before close().
   *
   *   commit N    write ─ sync ··········· ack N
   *   commit N+1          write ─ sync ··········· ack N+1 (after ack N)
   */
  appendOverlapped(batches: readonly AppendBatch[], stamp?: GenerationStamp): Promise<AppendReport> {
    let report: AppendReport;
    try {
      report = this.append(batches, 'write', stamp);
    } catch (err) {
      return Promise.reject(err);
    }
    this.#overlapping++;
    const started = performance.now();
    const syncs: Promise<void>[] = [];
    const syncSeconds: number[] = [];
    const files = [...this.#dirty];
    for (const file of files) {
      const sync = file.syncAsync();
      // Each sync's own time, from its start (they run at once) to its return.
      if (sync) syncs.push(sync.then(() => void syncSeconds.push((performance.now() - started) / 1000)));
      this.#syncing.set(file, (this.#syncing.get(file) ?? 0) + 1);
    }
    this.#dirty.clear();
    const ends = [...this.#domains.values()].map((d) => ({ d, registry: d.registryEnd, index: d.indexEnd }));
    const own = Promise.all(syncs);
    const done = Promise.all([this.#inFlight, own]).then(
      () => {
        for (const { d, registry, index } of ends) {
          d.registrySynced = Math.max(d.registrySynced, registry);
          d.indexSynced = Math.max(d.indexSynced, index);
        }
        report.durability = 'fsync';
        report.fsyncs = syncs.length;
        report.syncSeconds = syncSeconds;
        for (const outcome of report.outcomes) if (outcome.ok) outcome.result.durability = 'fsync';
        return report;
      },
      (err: unknown) => {
        if (this.#failure === undefined) {
          try {
            this.#fail(err);
          } catch {
            // #fail records the failure; the rejection below carries it.
          }
        }
        throw this.#failure;
      },
    );
    this.#inFlight = done.then(() => undefined);
    const settled = () => {
      this.#overlapping--;
      for (const file of files) {
        const left = this.#syncing.get(file)! - 1;
        if (left === 0) this.#syncing.delete(file);
        else this.#syncing.set(file, left);
      }
    };
    done.then(settled, settled);
    // A rejection is reported through `done`; the chain itself must not count as unhandled.
    this.#inFlight.catch(() => undefined);
    return done;
  }

  /** Waits until every overlapped commit has synced (or failed); then closes segments let go of. */
  async drain(): Promise<void> {
    try {
      await this.#inFlight;
    } catch {
      // The failure is the writer's state (failed) and was reported to the commit.
    }
    for (const file of this.#retired.splice(0)) file.close();
  }

  /** Closes every file; unsynced writes are fsynced first unless the writer has failed. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    let firstError: unknown;
    const attempt = (step: () => void) => {
      try {
        step();
      } catch (err) {
        firstError ??= err;
      }
    };
    if (this.#failure === undefined) {
      // Files with unsynced records (#dirty), and those with only zeros written ahead since their
      // last sync (their own dirty flag), so that a clean close leaves only synced bytes.
      const unsynced = new Set(this.#dirty);
      for (const domain of this.#domains.values())
        for (const file of openFiles(domain)) if (file.dirty) unsynced.add(file);
      for (const file of unsynced) attempt(() => this.#io.fsync(file.fd));
      this.#dirty.clear();
      for (const domain of this.#domains.values()) {
        domain.registrySynced = domain.registryEnd;
        domain.indexSynced = domain.indexEnd;
        attempt(() => domain.index.finishMerges());
        if (domain.index.hasNews(domain.indexEnd) && firstError === undefined) {
          attempt(() => this.#checkpoint(domain));
        }
      }
    }
    this.#dirty.clear();
    this.#zerosWanted.clear();
    for (const file of this.#retired.splice(0)) attempt(() => file.close());
    for (const domain of this.#domains.values()) {
      for (const file of openFiles(domain)) attempt(() => file.close());
      attempt(() => domain.index.close());
    }
    if (firstError !== undefined && this.#failure === undefined) this.#fail(firstError);
  }

  /** State for a domain seen for the first time, or undefined when its name is not allowed. */
  #newDomain(name: string): DomainState | undefined {
    if (!STORAGE_NAME_PATTERN.test(name)) return undefined;
    const folder = domainDir(this.#root, name);
    const index = DomainIndex.empty(this.#io, folder, name, this.#cache, this.#policy);
    const domain = newDomainState(name, folder, new NameRegistry(), false, index);
    this.#domains.set(name, domain);
    return domain;
  }

  /** Refuses, before anything changes, a stamp older than a domain's last generation. */
  #checkStamp(batches: readonly AppendBatch[], stamp: GenerationStamp): void {
    if (
      !(
        Number.isSafeInteger(stamp.generation) &&
        stamp.generation >= 1 &&
        Number.isSafeInteger(stamp.timestamp)
      )
    ) {
      throw new RingStoreError(
        'INVALID_OPTION',
        'a generation stamp needs a generation >= 1 and a timestamp',
        {
          option: 'stamp',
        },
      );
    }
    for (const batch of batches) {
      const last = this.#domains.get(batch.domain)?.lastGeneration ?? 0;
      if (last > stamp.generation) {
        throw new RingStoreError(
          'REPLICA_DIVERGED',
          `domain ${batch.domain} is at generation ${last}, past the stamped generation ${stamp.generation}`,
          { domain: batch.domain, lastGeneration: last, generation: stamp.generation },
        );
      }
    }
  }

  /**
   * Gives every accepted batch the stamp's generation and timestamp (never below a domain's last
   * timestamp: the same rule on every replica, since they all hold the same domain state).
   */
  #applyStamp(accepted: AcceptedBatch[], stamp: GenerationStamp): void {
    let timestamp = Math.max(0, Math.min(stamp.timestamp, Number.MAX_SAFE_INTEGER));
    for (const item of accepted) timestamp = Math.max(timestamp, item.domain.lastTimestamp);
    for (const item of accepted) {
      item.result.generation = stamp.generation;
      item.result.timestamp = timestamp;
    }
    if (accepted.length > 0) {
      this.#generation = Math.max(this.#generation, stamp.generation);
      this.#lastTimestamp = Math.max(this.#lastTimestamp, timestamp);
    }
  }

  /** Where a domain's log ends: its next position, last generation and timestamp. */
  tip(domain: string): DomainTip {
    const d = this.#domains.get(domain);
    if (!d) return { nextPosition: 0, lastGeneration: 0, lastTimestamp: 0 };
    return { nextPosition: d.nextPosition, lastGeneration: d.lastGeneration, lastTimestamp: d.lastTimestamp };
  }

  /** The result of an instance's earlier put with `key`, when there was one. */
  keyedResult(domain: string, aggregateType: string, id: bigint, key: string): PutResult | undefined {
    const d = this.#domains.get(domain);
    const code = d?.registry.aggregateCode(aggregateType) ?? -1;
    if (!d || code < 0) return undefined;
    const state = this.#stateOf(d, d.aggregateTypes[code]!, id, true);
    const result = state.keys?.get(key);
    this.#instances.trim();
    return result === undefined ? undefined : { ...result };
  }

  /** Cuts accepted batches into generations and stamps each with its number and timestamp. */
  #stampGenerations(accepted: AcceptedBatch[]): void {
    const ends = packGenerations(this.#sizes, this.#generationBytes, accepted.length, this.#ends);
    let start = 0;
    for (const end of ends) {
      const generation = ++this.#generation;
      // Written as this form so that a clock returning NaN or a negative value cannot stamp it.
      const now = Math.floor(this.#clock());
      const timestamp =
        now > this.#lastTimestamp && now <= Number.MAX_SAFE_INTEGER ? now : this.#lastTimestamp;
      this.#lastTimestamp = timestamp;
      for (let i = start; i < end; i++) {
        accepted[i]!.result.generation = generation;
        accepted[i]!.result.timestamp = timestamp;
      }
      start = end;
    }
  }

  /** Gives accepted batches the generation and timestamp they were recorded with (appendRecorded). */
  #stampRecorded(accepted: AcceptedBatch[], recorded: readonly RecordedBatch[]): void {
    for (const item of accepted) {
      const { generation, timestamp } = recorded[item.index]!;
      item.result.generation = generation;
      item.result.timestamp = timestamp;
      this.#generation = Math.max(this.#generation, generation);
      this.#lastTimestamp = Math.max(this.#lastTimestamp, timestamp);
    }
  }

  /** Refuses recorded batches whose generation or timestamp would go back within a domain. */
  #checkRecorded(batches: readonly RecordedBatch[]): void {
    const last = new Map<string, { generation: number; timestamp: number }>();
    for (let i = 0; i < batches.length; i++) {
      const { domain, generation, timestamp } = batches[i]!;
      const state = this.#domains.get(domain);
      const before = last.get(domain) ?? {
        generation: state?.lastGeneration ?? 0,
        timestamp: state?.lastTimestamp ?? 0,
      };
      if (
        !Number.isSafeInteger(generation) ||
        !Number.isSafeInteger(timestamp) ||
        generation < Math.max(1, before.generation) ||
        timestamp < Math.max(0, before.timestamp)
      ) {
        throw new RingStoreError(
          'INTERNAL',
          `recorded batch ${i} of domain ${domain} goes back in generation or time`,
        );
      }
      last.set(domain, { generation, timestamp });
    }
  }

  /** Lays out this call's bytes: index records per domain, payloads per data file in the arena. */
  #encode(
    accepted: AcceptedBatch[],
    touched: DomainState[],
    targets: DataTarget[],
  ): Map<DomainState, Uint8Array> {
    let arenaBytes = 0;
    for (const target of targets) {
      target.arenaOffset = arenaBytes;
      arenaBytes += target.length;
    }
    if (arenaBytes > this.#arena.byteLength) {
      this.#arena = new Uint8Array(Math.max(arenaBytes, this.#arena.byteLength * 2));
    }
    const buffers = new Map<DomainState, { bytes: Uint8Array; view: DataView; cursor: number }>();
    for (const domain of touched) {
      const bytes = new Uint8Array(domain.pendingIndexBytes);
      buffers.set(domain, { bytes, view: new DataView(bytes.buffer), cursor: 0 });
    }
    const arena = this.#arena;
    for (const item of accepted) {
      const { batch, events, domain, target, result } = item;
      const buffer = buffers.get(domain)!;
      item.indexOffset = domain.indexEnd + buffer.cursor;
      buffer.cursor = encodeIndexRecord(
        buffer.bytes,
        buffer.view,
        buffer.cursor,
        {
          firstPosition: result.firstPosition,
          aggregateId: batch.aggregateId,
          firstVersion: result.firstVersion,
          generation: result.generation,
          timestamp: result.timestamp,
          syncedEnd: domain.indexSynced,
          dataSegment: target.segment,
          dataOffset: item.dataOffset,
          aggregateTypeCode: item.aggregateType.code,
          key: item.key,
        },
        events,
        this.#codes,
        item.codesStart,
      );
      events.copyPayloads(arena, target.arenaOffset + (item.dataOffset - target.fileStart));
    }
    const out = new Map<DomainState, Uint8Array>();
    for (const [domain, buffer] of buffers) out.set(domain, buffer.bytes);
    return out;
  }

  /** The write phase and, with `sync`, the barrier; returns the number of fsync calls it made. */
  #write(
    touched: DomainState[],
    targets: DataTarget[],
    indexBuffers: Map<DomainState, Uint8Array>,
    sync: boolean,
    delta: CommitDelta,
  ): number {
    let fsyncs = 0;
    const registryDeltas = new Map<DomainState, Uint8Array>();
    for (const domain of touched) {
      if (domain.pendingNames.length === 0) continue;
      fsyncs += this.#ensureFolder(domain);
      let size = 0;
      for (const entry of domain.pendingNames) size += registryRecordBytes(entry.name);
      const bytes = new Uint8Array(size);
      let at = 0;
      let sequence = domain.registry.records - domain.pendingNames.length;
      for (const entry of domain.pendingNames) {
        at = encodeRegistryRecord(bytes, at, {
          ...entry,
          sequence: sequence++,
          syncedEnd: domain.registrySynced,
        });
      }
      if (!domain.registryFile) {
        const opened = this.#openFile(domain, REGISTRY_FILE, domain.registryEnd, 0);
        domain.registryFile = opened.file;
        fsyncs += opened.fsyncs;
      }
      this.#appendTo(domain.registryFile, bytes);
      domain.registryEnd += size;
      registryDeltas.set(domain, bytes);
    }

    for (const target of targets) {
      if (target.length === 0) continue;
      const opened = this.#segmentFile(target);
      fsyncs += opened.fsyncs;
      if (opened.file.end !== target.fileStart) {
        throw new Error(`segment ${target.segment} ends at ${opened.file.end}, expected ${target.fileStart}`);
      }
      this.#appendTo(
        opened.file,
        this.#arena.subarray(target.arenaOffset, target.arenaOffset + target.length),
      );
    }

    for (const domain of touched) {
      const bytes = indexBuffers.get(domain)!;
      if (bytes.byteLength === 0) continue;
      if (!domain.indexFile) {
        const opened = this.#openFile(domain, INDEX_FILE, domain.indexEnd, this.#indexExtentBytes);
        domain.indexFile = opened.file;
        fsyncs += opened.fsyncs;
      }
      this.#appendTo(domain.indexFile, bytes);
    }

    for (const domain of touched) {
      const indexBytes = indexBuffers.get(domain)!;
      delta.domains.push({
        domain: domain.name,
        registryBytes: registryDeltas.get(domain) ?? new Uint8Array(0),
        indexOffset: domain.indexEnd,
        indexBytes,
      });
      domain.indexEnd += indexBytes.byteLength;
    }
    delta.generation = this.#generation;
    if (sync) fsyncs += this.#barrier();
    return fsyncs;
  }

  /** Syncs every file with unsynced bytes, nothing written in between; returns the syncs made. */
  #barrier(): number {
    let fsyncs = 0;
    const timed = (sync: () => void) => this.#timed(sync);
    for (const file of this.#dirty) fsyncs += file.sync(timed);
    this.#dirty.clear();
    // Bytes of overlapped commits whose syncs are still running are made durable here too, so that
    // the synced ends below may include them.
    for (const file of this.#syncing.keys()) {
      this.#timed(() => this.#io.fdatasync(file.fd));
      fsyncs++;
    }
    // Everything written is durable now: every domain's next records vouch for all of it.
    for (const domain of this.#domains.values()) {
      domain.registrySynced = domain.registryEnd;
      domain.indexSynced = domain.indexEnd;
    }
    return fsyncs;
  }

  #appendTo(file: AppendFile, bytes: Uint8Array): void {
    file.append(bytes);
    this.#dirty.add(file);
    if (file.zerosWanted) this.#zerosWanted.add(file);
  }

  /** Creates the domain folder on first use (and makes its entry durable); returns fsyncs made. */
  #ensureFolder(domain: DomainState): number {
    if (domain.folderExists) return 0;
    this.#io.mkdir(domain.folder);
    this.#timed(() => this.#io.fsyncDir(this.#root));
    domain.folderExists = true;
    return 1;
  }

  /** Opens a domain file for appending at `end`, creating it (and fsyncing the folder) when new. */
  #openFile(
    domain: DomainState,
    name: string,
    end: number,
    extentBytes: number,
    limit?: number,
  ): { file: AppendFile; fsyncs: number } {
    const io = this.#io;
    const path = joinPath(domain.folder, name);
    const isNew = !io.exists(path);
    const file = new AppendFile(io, io.open(path, 'create'), end, extentBytes, limit);
    if (!isNew) return { file, fsyncs: 0 };
    this.#timed(() => io.fsyncDir(domain.folder));
    return { file, fsyncs: 1 };
  }

  /** The open file of a target's segment: rolls over from the previous segment, writes a new header. */
  #segmentFile(target: DataTarget): { file: AppendFile; fsyncs: number } {
    const aggregateType = target.aggregateType;
    if (aggregateType.file && aggregateType.fileSegment === target.segment)
      return { file: aggregateType.file, fsyncs: 0 };
    let fsyncs = this.#ensureFolder(target.domain);
    const previous = aggregateType.file;
    if (previous) {
      // The previous segment is complete: make it durable before letting go of its descriptor.
      fsyncs += previous.sync((sync) => this.#timed(sync));
      this.#dirty.delete(previous);
      this.#zerosWanted.delete(previous);
      // An overlapped sync may still hold its descriptor number: close it once the syncs settle.
      this.#retired.push(previous);
      aggregateType.file = undefined;
    }
    const fresh = target.fileStart === SEGMENT_HEADER_BYTES;
    const opened = this.#openFile(
      target.domain,
      segmentFileName(aggregateType.name, target.segment),
      fresh ? 0 : target.fileStart,
      this.#dataExtentBytes,
      this.#segmentBytes,
    );
    if (fresh) this.#appendTo(opened.file, encodeSegmentHeader(target.segment, aggregateType.code));
    aggregateType.file = opened.file;
    aggregateType.fileSegment = target.segment;
    return { file: opened.file, fsyncs: fsyncs + opened.fsyncs };
  }

  /** Runs one fsync-like call and records how long it took. */
  #timed(sync: () => void): void {
    const start = performance.now();
    sync();
    this.#syncSeconds.push((performance.now() - start) / 1000);
  }

  /** The instance's state from the cache, or loaded from the domain's index; with `withKeys`, its keyed results too. */
  #stateOf(
    domain: DomainState,
    aggregateType: AggregateTypeState,
    id: bigint,
    withKeys: boolean,
  ): InstanceState {
    try {
      const state = this.#instances.get(aggregateType.instances, id, () => {
        const last = domain.index.lastOf(aggregateType.code, id);
        return {
          version: last === undefined ? 0 : last.firstVersion + last.eventCount - 1,
          keys: undefined,
          keysLoaded: last === undefined,
          referenced: false,
        };
      });
      if (withKeys && !state.keysLoaded) this.#loadKeys(domain, aggregateType.code, id, state);
      return state;
    } catch (err) {
      return this.#indexFailed(domain, err);
    }
  }

  /**
   * A lookup in a domain's index failed (a damaged index file, or a read error) in the middle of an
   * append call: the writer fails (its state may be half-updated), and when an index file is
   * damaged its checkpoint is removed, so that the next open rebuilds the index from the log.
   */
  #indexFailed(domain: DomainState, err: unknown): never {
    if (err instanceof RingStoreError && err.code === 'CORRUPT_DATA') {
      try {
        this.#io.unlink(joinPath(domain.folder, CHECKPOINT_FILE));
        this.#io.fsyncDir(domain.folder);
      } catch {
        // The checkpoint stays: the next open reads the damaged file and fails here again.
      }
      this.#failure = new RingStoreError(
        'STORE_FAILED',
        `the index of domain ${domain.name} is damaged (${err.message}); the log is intact and the next open rebuilds the index from it`,
      );
      throw this.#failure;
    }
    return this.#fail(err);
  }

  /** Reads the keyed results of an instance's earlier batches from their index records. */
  #loadKeys(domain: DomainState, code: number, id: bigint, state: InstanceState): void {
    const keyed = domain.index.entriesOf(code, id).filter((entry) => entry.hasKey);
    if (keyed.length > 0) {
      const path = joinPath(domain.folder, INDEX_FILE);
      const fd = this.#io.open(path, 'read');
      try {
        state.keys ??= new Map();
        for (const entry of keyed) {
          const record = readIndexRecordAt(this.#io, fd, entry.indexOffset, `${domain.name}/${INDEX_FILE}`);
          if (record.idempotencyKey === undefined || state.keys.has(record.idempotencyKey)) continue;
          state.keys.set(record.idempotencyKey, {
            firstVersion: record.firstVersion,
            lastVersion: record.firstVersion + record.eventCount - 1,
            firstPosition: record.firstPosition,
            generation: record.generation,
            timestamp: record.timestamp,
            durability: 'fsync',
            replayed: false,
          });
        }
      } finally {
        this.#io.close(fd);
      }
    }
    state.keysLoaded = true;
  }

  /**
   * Gives the domain's merge in progress its share of this append call: MERGE_ENTRIES_PER_BATCH
   * merged entries per batch appended (at least one step), so merges keep up with the runs that
   * checkpoints add while no call does a whole merge.
   */
  #advanceMerge(domain: DomainState, batches: number): void {
    try {
      domain.index.advanceMerge(MERGE_ENTRIES_PER_BATCH * batches + MERGE_MIN_ENTRIES);
    } catch (err) {
      this.#indexFailed(domain, err);
    }
  }

  /** Adds a written batch to its domain's index. */
  #index(item: AcceptedBatch): void {
    item.domain.index.add(
      {
        aggregateTypeCode: item.aggregateType.code,
        aggregateId: item.batch.aggregateId,
        firstVersion: item.result.firstVersion,
        eventCount: item.batch.events.length,
        generation: item.result.generation,
        indexOffset: item.indexOffset,
        hasKey: item.key !== undefined,
      },
      item.result.firstPosition,
      item.result.timestamp,
    );
    item.domain.lastGeneration = item.result.generation;
    item.domain.lastTimestamp = item.result.timestamp;
  }

  /**
   * Checkpoints a domain's index (DomainIndex.checkpoint) at the end of its index: first makes every
   * written byte durable, since a checkpoint vouches for the log before it. Returns the syncs made.
   */
  #checkpoint(domain: DomainState): { fsyncs: number; checkpoint: Checkpoint } {
    const fsyncs = this.#dirty.size > 0 || this.#syncing.size > 0 ? this.#barrier() : 0;
    const dataEnds = new Map<number, { segment: number; end: number }>();
    for (const aggregateType of domain.aggregateTypes) {
      dataEnds.set(aggregateType.code, { segment: aggregateType.segment, end: aggregateType.end });
    }
    const checkpoint = domain.index.checkpoint({
      registryEnd: domain.registryEnd,
      indexEnd: domain.indexEnd,
      nextPosition: domain.nextPosition,
      lastGeneration: domain.lastGeneration,
      lastTimestamp: domain.lastTimestamp,
      dataEnds,
    });
    return { fsyncs, checkpoint };
  }

  #fail(err: unknown): never {
    const cause = (err as { code?: unknown })?.code;
    this.#failure = new RingStoreError(
      'STORE_FAILED',
      `the store has failed and accepts no more writes (a file write or fsync failed${typeof cause === 'string' ? `: ${cause}` : ''})`,
    );
    throw this.#failure;
  }
}

/** The files a domain has open for appending: its data segments, its index, its registry. */
function* openFiles(domain: DomainState): Generator<AppendFile> {
  for (const aggregateType of domain.aggregateTypes) if (aggregateType.file) yield aggregateType.file;
  if (domain.indexFile) yield domain.indexFile;
  if (domain.registryFile) yield domain.registryFile;
}
