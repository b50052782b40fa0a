import { RingStoreError } from '../errors.js';
import { LIMITS } from '../model/limits.js';
import type { BlockCache } from './block-cache.js';
import { type Checkpoint, readCheckpoint } from './checkpoint.js';
import { POSITIONS_FILE } from './domain-index.js';
import { EventMaterializer } from './event-materializer.js';
import { type FileIO, readFileFrom, readWholeFile } from './file-io.js';
import { domainDir, INDEX_FILE, joinPath, REGISTRY_FILE } from './format.js';
import {
  decodeIndexRecord,
  EVENT_HEADER_BYTES,
  emptyIndexRecord,
  INDEX_FIXED_BYTES,
  type IndexRecord,
} from './index-record.js';
import { IndexRecordSource, type LoadedRecord, scanIndexRange } from './index-record-io.js';
import { IndexTail } from './index-tail.js';
import { bloomFileName, InstanceBloom } from './instance-bloom.js';
import { InstanceRun, runFileName } from './instance-run.js';
import { NameRegistry } from './name-registry.js';
import { type PositionEntry, PositionIndex } from './position-index.js';
import type { RecordCache } from './record-cache.js';
import { corruptData } from './recovery-plan.js';
import { decodeRegistryRecord } from './registry-record.js';
import { classifyFault, type IndexScanState, indexVouchAfter, newIndexScanState, scanIndex } from './scan.js';
import type { DomainDelta } from './types.js';

const EMPTY = new Uint8Array(0);

function isCorrupt(err: unknown): boolean {
  return err instanceof RingStoreError && err.code === 'CORRUPT_DATA';
}

/** An open run and its filter. */
interface ViewRun {
  run: InstanceRun;
  bloom: InstanceBloom | undefined;
}

function closeRun(viewRun: ViewRun): void {
  viewRun.run.close();
  viewRun.bloom?.close();
}

/** One batch of an instance, as the runs and the tail know it. */
export interface BatchRef {
  indexOffset: number;
  firstVersion: number;
  eventCount: number;
  generation: number;
}

/**
 * What a StorageReader knows of one domain (docs/FORMAT.md, "Index files"):
 *
 *   below the checkpoint   on disk: instance runs (instance → batches), the sparse positions file
 *                          (position, generation, time → index offset) and the index records,
 *                          read through the reader's BlockCache
 *   past the checkpoint    in memory: the IndexTail, extended by each commit's delta
 *
 * Deltas are queued by `enqueue` and applied on the next read of the domain, so a commit costs the
 * thread that receives it no index work. A delta that carries a checkpoint moves the tail to disk.
 */
export class DomainView {
  readonly name: string;
  readonly #io: FileIO;
  readonly #folder: string;
  readonly #cache: BlockCache;
  registry = new NameRegistry();
  #scan: IndexScanState = newIndexScanState(this.registry);
  #checkpoint: Checkpoint | undefined;
  #runs = new Map<number, ViewRun>();
  #positions: PositionIndex | undefined;
  #records: IndexRecordSource | undefined;
  #tail = new IndexTail(0, 0);
  #pending: DomainDelta[] = [];
  /** A checkpoint queued with the last deltas: the records before it are dropped, not applied. */
  #pendingCheckpoint: Checkpoint | undefined;
  /** A queued delta did not follow: the next settle reloads from the files. */
  #stale = false;
  readonly materializer: EventMaterializer;

  readonly #recordCache: RecordCache;
  /** The index file's key in the record cache: its records below a checkpoint never change. */
  readonly #recordFileKey: number;

  constructor(io: FileIO, root: string, name: string, cache: BlockCache, records: RecordCache) {
    this.name = name;
    this.#io = io;
    this.#folder = domainDir(root, name);
    this.#cache = cache;
    this.#recordCache = records;
    this.#recordFileKey = records.newFileKey();
    this.materializer = new EventMaterializer(io, this.#folder, name);
  }

  /** Events in the domain: its next position. */
  get eventCount(): number {
    this.settle();
    return this.#scan.nextPosition;
  }

  get lastGeneration(): number {
    return this.#scan.lastGeneration;
  }

  get tail(): IndexTail {
    return this.#tail;
  }

  get positionEntries(): PositionIndex | undefined {
    return this.#positions;
  }

  /** Timestamp of the last batch below the checkpoint (−∞ when there is none). */
  get checkpointedLastTimestamp(): number {
    return this.#checkpoint && this.#checkpoint.indexEnd > 0
      ? this.#checkpoint.lastTimestamp
      : Number.NEGATIVE_INFINITY;
  }

  /**
   * Queues a commit's delta. Its registry records are applied now (names are few); its index
   * records wait for the next read. A delta that carries a checkpoint drops every queued record up
   * to it (they are on disk now), so the queue never holds more than one checkpoint interval, even
   * when nothing reads the domain.
   */
  enqueue(delta: DomainDelta): void {
    if (!this.#applyRegistry(delta.registryBytes)) this.#stale = true;
    if (delta.checkpoint) {
      // A checkpoint is written at the end of its commit: none of the delta's records follow it.
      this.#pending = [];
      this.#pendingCheckpoint = delta.checkpoint;
      return;
    }
    this.#pending.push({ ...delta, registryBytes: EMPTY });
  }

  /** Applies queued deltas. */
  settle(): void {
    if (this.#stale) {
      this.load(true);
      return;
    }
    const checkpoint = this.#pendingCheckpoint;
    if (checkpoint !== undefined) {
      this.#pendingCheckpoint = undefined;
      try {
        this.#jumpTo(checkpoint);
      } catch {
        this.load(true);
        return;
      }
    }
    if (this.#pending.length === 0) return;
    const pending = this.#pending;
    this.#pending = [];
    for (let i = 0; i < pending.length; i++) {
      if (!this.#apply(pending[i]!)) {
        // This delta does not follow what the view has: catch up from the files instead.
        this.load(true);
        return;
      }
    }
  }

  /**
   * (Re)reads the domain from its files: registry, checkpoint (its runs and positions), and the
   * index records past the checkpoint into the tail. `strict`: damage to synced index bytes throws.
   */
  load(strict: boolean): void {
    this.#closeFiles();
    this.#pending = [];
    this.#pendingCheckpoint = undefined;
    this.#stale = false;
    const registryBytes = readWholeFile(this.#io, joinPath(this.#folder, REGISTRY_FILE));
    this.registry = new NameRegistry();
    this.#applyRegistry(registryBytes);
    const checkpoint = readCheckpoint(this.#io, this.#folder);
    let adopted: Checkpoint | undefined;
    this.#checkpoint = undefined;
    if (typeof checkpoint === 'object' && checkpoint.registryEnd <= registryBytes.byteLength) {
      try {
        this.#adopt(checkpoint);
        adopted = checkpoint;
      } catch {
        this.#closeFiles();
        this.#checkpoint = undefined;
      }
    }
    const base = adopted?.indexEnd ?? 0;
    this.#tail = new IndexTail(base, adopted?.nextPosition ?? 0);
    this.#scan = this.#scanStateAtCheckpoint();
    const indexBytes = readFileFrom(this.#io, joinPath(this.#folder, INDEX_FILE), base);
    const scan = scanIndex(indexBytes, this.#scan, {
      baseOffset: base,
      onRecord: (record) => this.#tail.add(record),
    });
    this.#tail.appendBytes(indexBytes.subarray(0, scan.validEnd - base));
    if (
      strict &&
      scan.fault &&
      classifyFault(
        indexBytes,
        { ...scan, validEnd: scan.validEnd - base, vouched: scan.vouched - base },
        (b, f) => indexVouchAfter(b, f) - base,
      ) === 'corrupt'
    ) {
      throw corruptData({ file: `${this.name}/${INDEX_FILE}`, ...scan.fault });
    }
  }

  /** Every batch of an instance, in version order. */
  batchesOf(aggregateTypeCode: number, aggregateId: bigint): BatchRef[] {
    this.settle();
    const batches: BatchRef[] = [];
    for (const { run, bloom } of this.#runs.values()) {
      if (bloom && !bloom.mayContain(aggregateTypeCode, aggregateId)) continue;
      let entries: readonly BatchRef[];
      try {
        entries = run.entriesOf(aggregateTypeCode, aggregateId);
      } catch (err) {
        if (!isCorrupt(err)) throw err;
        // A damaged run is never trusted: its batches of the instance come from the log instead.
        entries = this.#batchesInLog(run.meta.indexFrom, run.meta.indexTo, aggregateTypeCode, aggregateId);
      }
      for (const entry of entries) batches.push(entry);
    }
    const tail = this.#tail;
    const recent = tail.instances.get(aggregateTypeCode)?.get(aggregateId);
    if (recent) {
      for (const i of recent) {
        batches.push({
          indexOffset: tail.base + tail.recordOffset[i]!,
          firstVersion: tail.firstVersion[i]!,
          eventCount: tail.eventCount[i]!,
          generation: tail.generation[i]!,
        });
      }
    }
    return batches;
  }

  /**
   * The record at an index offset: from the tail in memory (checked when it arrived), or from disk
   * through the record cache; `eventCount`, when known, sizes the read.
   */
  recordAt(offset: number, eventCount?: number): LoadedRecord {
    const tail = this.#tail;
    if (offset >= tail.base) {
      const record = emptyIndexRecord();
      const fault = decodeIndexRecord(tail.bytes, tail.view, offset - tail.base, record, tail.base, false);
      if (fault !== undefined)
        throw corruptData({ file: `${this.name}/${INDEX_FILE}`, offset, reason: fault });
      return { record, bytes: tail.bytes, view: tail.view };
    }
    return this.#recordSource().recordAt(
      offset,
      eventCount === undefined
        ? undefined
        : INDEX_FIXED_BYTES + LIMITS.maxIdempotencyKeyBytes + EVENT_HEADER_BYTES * eventCount,
    );
  }

  /**
   * Visits the records from index offset `from` on, in order, until `visit` returns false: those
   * below the checkpoint read from disk in growing windows, then those of the tail.
   */
  forEachRecord(from: number, visit: (record: IndexRecord, view: DataView) => boolean): void {
    const tail = this.#tail;
    let going = true;
    if (from < tail.base) {
      scanIndexRange(this.#io, this.#fd(), from, tail.base, `${this.name}/${INDEX_FILE}`, (loaded) => {
        going = visit(loaded.record, loaded.view);
        return going;
      });
    }
    if (!going) return;
    const record = emptyIndexRecord();
    let i =
      tail.count > 0 && from > tail.base
        ? Math.max(0, tail.lastAtMost(tail.recordOffset, from - tail.base))
        : 0;
    for (; i < tail.count; i++) {
      const fault = decodeIndexRecord(tail.bytes, tail.view, tail.recordOffset[i]!, record, tail.base, false);
      if (fault !== undefined) {
        throw corruptData({
          file: `${this.name}/${INDEX_FILE}`,
          offset: tail.base + tail.recordOffset[i]!,
          reason: fault,
        });
      }
      if (record.fileOffset < from) continue;
      if (!visit(record, tail.view)) return;
    }
  }

  /** An index offset at or before the record holding `position`. */
  offsetForPosition(position: number): number {
    const tail = this.#tail;
    if (position >= tail.basePosition) {
      const i = tail.lastAtMost(tail.firstPosition, position);
      return i < 0 ? tail.base : tail.base + tail.recordOffset[i]!;
    }
    return this.#fromPositions((positions) => positions.atPosition(position));
  }

  /** An index offset at or before the first record with timestamp >= time. */
  offsetForTime(time: number): number {
    const tail = this.#tail;
    if (this.checkpointedLastTimestamp < time) {
      const i = tail.lastBelow(tail.timestamp, time);
      return i < 0 ? tail.base : tail.base + tail.recordOffset[i]!;
    }
    return this.#fromPositions((positions) => positions.beforeTime(time));
  }

  /**
   * The index offset a positions lookup gives, or 0 when it has no entry; also 0 — the log read from
   * its start: slower, never wrong — when a positions block it reads is damaged.
   */
  #fromPositions(lookup: (positions: PositionIndex) => PositionEntry | undefined): number {
    const positions = this.#positions;
    if (!positions) return 0;
    try {
      return lookup(positions)?.indexOffset ?? 0;
    } catch (err) {
      if (!isCorrupt(err)) throw err;
      return 0;
    }
  }

  /** The batches of an instance in index range [from, to), found by reading those index records. */
  #batchesInLog(from: number, to: number, aggregateTypeCode: number, aggregateId: bigint): BatchRef[] {
    const found: BatchRef[] = [];
    this.forEachRecord(from, (record) => {
      if (record.fileOffset >= to) return false;
      if (record.aggregateTypeCode === aggregateTypeCode && record.aggregateId === aggregateId) {
        found.push({
          indexOffset: record.fileOffset,
          firstVersion: record.firstVersion,
          eventCount: record.eventCount,
          generation: record.generation,
        });
      }
      return true;
    });
    return found;
  }

  close(): void {
    this.#closeFiles();
    this.materializer.close();
  }

  /** Applies one delta; false when it does not follow what the view has. */
  #apply(entry: DomainDelta): boolean {
    if (!this.#applyRegistry(entry.registryBytes)) return false;
    const tail = this.#tail;
    if (entry.indexOffset > tail.end) return false;
    const skip = tail.end - entry.indexOffset;
    if (skip < entry.indexBytes.byteLength) {
      const bytes = entry.indexBytes.subarray(skip);
      const start = tail.end;
      const scan = scanIndex(bytes, this.#scan, {
        baseOffset: start,
        onRecord: (record) => tail.add(record),
      });
      tail.appendBytes(bytes.subarray(0, scan.validEnd - start));
      if (scan.fault) throw corruptData({ file: `${this.name}/${INDEX_FILE}`, ...scan.fault });
    }
    return true;
  }

  /** Registry records in sequence, skipping ones already known; false on a gap or damage. */
  #applyRegistry(bytes: Uint8Array): boolean {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let offset = 0;
    while (offset < bytes.byteLength) {
      const record = decodeRegistryRecord(bytes, view, offset);
      if (typeof record === 'string') return false;
      if (record.sequence >= this.registry.records && !this.registry.accept(record)) return false;
      offset += record.recordLength;
    }
    this.#scan.registry = this.registry;
    return true;
  }

  /**
   * Adopts a newer checkpoint: its files, an empty tail at its indexEnd and the scan state there.
   * The records between the old tail and it are below it now, read from disk when needed.
   */
  #jumpTo(checkpoint: Checkpoint): void {
    if (checkpoint.indexEnd < this.#tail.end) throw new Error('checkpoint behind the tail');
    this.#adopt(checkpoint);
    this.#tail = new IndexTail(checkpoint.indexEnd, checkpoint.nextPosition);
    this.#scan = this.#scanStateAtCheckpoint();
  }

  /** Opens the files a checkpoint names (runs kept open across checkpoints), closing the rest. */
  #adopt(checkpoint: Checkpoint): void {
    const runs = new Map<number, ViewRun>();
    try {
      for (const info of checkpoint.runs) {
        runs.set(info.runId, this.#runs.get(info.runId) ?? this.#openRun(info.runId));
      }
    } catch (err) {
      for (const [runId, run] of runs) if (!this.#runs.has(runId)) closeRun(run);
      throw err;
    }
    for (const [runId, run] of this.#runs) if (!runs.has(runId)) closeRun(run);
    this.#runs = runs;
    this.#positions?.close();
    this.#positions =
      checkpoint.positionEntries > 0
        ? PositionIndex.open(
            this.#io,
            joinPath(this.#folder, POSITIONS_FILE),
            this.#cache,
            checkpoint.positionEntries,
            `${this.name}/${POSITIONS_FILE}`,
          )
        : undefined;
    // The record source reads below the checkpoint only; cached records never change.
    this.#records?.close();
    this.#records = undefined;
    this.#checkpoint = checkpoint;
  }

  #openRun(runId: number): ViewRun {
    const file = runFileName(runId);
    const run = InstanceRun.open(this.#io, joinPath(this.#folder, file), this.#cache, `${this.name}/${file}`);
    const bloomFile = bloomFileName(runId);
    const bloom = InstanceBloom.open(
      this.#io,
      joinPath(this.#folder, bloomFile),
      this.#cache,
      `${this.name}/${bloomFile}`,
    );
    return { run, bloom };
  }

  #scanStateAtCheckpoint(): IndexScanState {
    const state = newIndexScanState(this.registry);
    const checkpoint = this.#checkpoint;
    if (checkpoint) {
      state.nextPosition = checkpoint.nextPosition;
      state.lastGeneration = checkpoint.lastGeneration;
      state.lastTimestamp = checkpoint.lastTimestamp;
      for (const end of checkpoint.dataEnds) {
        state.dataEnds.set(end.aggregateTypeCode, { segment: end.segment, end: end.end });
      }
    }
    return state;
  }

  #recordSource(): IndexRecordSource {
    this.#records ??= new IndexRecordSource(
      this.#io,
      this.#io.open(joinPath(this.#folder, INDEX_FILE), 'read'),
      this.#recordCache,
      this.#recordFileKey,
      `${this.name}/${INDEX_FILE}`,
    );
    return this.#records;
  }

  /** The index file's descriptor (the record source's). */
  #fd(): number {
    return this.#recordSource().fd;
  }

  #closeFiles(): void {
    for (const run of this.#runs.values()) closeRun(run);
    this.#runs = new Map();
    this.#positions?.close();
    this.#positions = undefined;
    this.#records?.close();
    this.#records = undefined;
  }
}
