import { crc32 } from '../crc.js';
import { RingStoreError } from '../errors.js';
import { STORAGE_NAME_PATTERN } from '../model/names.js';
import type { ValidGetOptions, ValidReadOptions } from '../model/queries.js';
import type { DomainReadResult, InstanceEvents, StoredEvent } from '../types.js';
import { type FileIO, readWholeFile, realFileIO } from './file-io.js';
import {
  decodeRegistryRecord,
  domainDir,
  INDEX_FILE,
  joinPath,
  REGISTRY_FILE,
  segmentFileName,
} from './format.js';
import { DomainReadIndex } from './read-index.js';
import { corruptData } from './recovery.js';
import { scanIndex } from './scan.js';
import type { CommitDelta, DomainDelta } from './types.js';

/** Two wanted spans of one segment file are read with one call when at most this many bytes lie between them. */
const MERGE_GAP_BYTES = 4096;
/** The largest single read: bounds the scratch buffer and the time of each synchronous read call. */
const MAX_READ_BYTES = 1 << 20;

export interface StorageReaderOptions {
  io?: FileIO;
}

/**
 * The read side over a store directory (DESIGN.md §4): an in-memory index per domain built from the
 * index files at open and extended with each commit's CommitDelta, and payloads read from the data
 * segments with positional reads (nearby spans merged into one read; descriptors are cached).
 *
 * It never writes. It accepts the valid prefix of each file and ignores what follows: the writer's
 * recovery (StorageWriter.open) is the one that decides about damaged tails. Every option behaves
 * exactly as in MemoryEventStore.
 */
export class StorageReader {
  readonly #root: string;
  readonly #io: FileIO;
  readonly #domains = new Map<string, DomainReadIndex>();
  /** Segment descriptors per domain name, by aggregate-type code then segment (opened on first read). */
  readonly #fds = new Map<string, (number | undefined)[][]>();
  #scratch = new Uint8Array(0);
  /**
   * The spans of wanted events that get/read collect for #materialize (batch, first position, event
   * count, data bytes), reused across calls: a call runs synchronously from collection to result.
   */
  #spanBatch = new Uint32Array(64);
  #spanFirst = new Float64Array(64);
  #spanEvents = new Uint32Array(64);
  #spanBytes = new Float64Array(64);
  #spanCount = 0;
  #generation = 0;
  #closed = false;

  private constructor(root: string, io: FileIO) {
    this.#root = root;
    this.#io = io;
  }

  static open(dir: string, options: StorageReaderOptions = {}): StorageReader {
    const reader = new StorageReader(dir, options.io ?? realFileIO);
    const io = reader.#io;
    if (io.exists(dir)) {
      for (const name of io.readdir(dir)) {
        if (!STORAGE_NAME_PATTERN.test(name) || !io.isDirectory(joinPath(dir, name))) continue;
        const domain = new DomainReadIndex(name);
        reader.#domains.set(name, domain);
        reader.#catchUp(domain, false);
      }
    }
    return reader;
  }

  /** The last generation this reader has seen committed. */
  get generation(): number {
    return this.#generation;
  }

  /** Brings the index up to date with one append call's commit. */
  apply(delta: CommitDelta): void {
    this.#assertOpen();
    for (const entry of delta.domains) this.#applyDomain(entry);
    this.#generation = Math.max(this.#generation, delta.generation);
  }

  version(domain: string, aggregateType: string, id: bigint): number {
    const list = this.#batchesOf(domain, aggregateType, id);
    if (!list || list.length === 0) return 0;
    const d = this.#domains.get(domain)!;
    const last = list[list.length - 1]!;
    return d.batchFirstVersion[last]! + d.batchEventCount[last]! - 1;
  }

  hasDomain(domain: string): boolean {
    return (this.#domains.get(domain)?.eventCount ?? 0) > 0;
  }

  domains(): string[] {
    return [...this.#domains.values()]
      .filter((d) => d.eventCount > 0)
      .map((d) => d.name)
      .sort();
  }

  get(domain: string, aggregateType: string, id: bigint, options: ValidGetOptions): InstanceEvents {
    this.#assertOpen();
    const list = this.#batchesOf(domain, aggregateType, id);
    if (!list || list.length === 0) return { version: 0, events: [] };
    const d = this.#domains.get(domain)!;
    // An instance's batches have increasing generations: the visible ones are a prefix.
    let visible = list.length;
    if (options.atGeneration !== Number.POSITIVE_INFINITY) {
      let low = 0;
      while (low < visible) {
        const mid = (low + visible) >>> 1;
        if (d.batchGeneration[list[mid]!]! > options.atGeneration) visible = mid;
        else low = mid + 1;
      }
    }
    if (visible === 0) return { version: 0, events: [] };
    const lastBatch = list[visible - 1]!;
    const version = d.batchFirstVersion[lastBatch]! + d.batchEventCount[lastBatch]! - 1;
    const to = Math.min(options.toVersion, version);
    const from = options.fromVersion;
    this.#spanCount = 0;
    let wanted = 0;
    if (from <= to && options.limit > 0) {
      // The batch holding `from`: the last one whose first version is <= from.
      let low = 0;
      let high = visible;
      while (low < high) {
        const mid = (low + high) >>> 1;
        if (d.batchFirstVersion[list[mid]!]! <= from) low = mid + 1;
        else high = mid;
      }
      const limit = Math.min(options.limit, to - from + 1);
      const eventLength = d.eventLength;
      for (let k = Math.max(0, low - 1); k < visible && wanted < limit; k++) {
        const b = list[k]!;
        const firstPosition = d.batchFirstPosition[b]!;
        const first = firstPosition + Math.max(0, from - d.batchFirstVersion[b]!);
        const end = firstPosition + Math.min(d.batchEventCount[b]!, first - firstPosition + limit - wanted);
        this.#wantRange(b, first, end, eventLength);
        wanted += end - first;
      }
    }
    return { version, events: this.#materialize(d, wanted, options.verifyCrc) };
  }

  read(domain: string, options: ValidReadOptions): DomainReadResult {
    this.#assertOpen();
    const d = this.#domains.get(domain);
    const total = d?.eventCount ?? 0;
    let start = options.fromPosition;
    let end = total;
    if (d && options.fromTime !== Number.NEGATIVE_INFINITY && start < total) {
      start = Math.max(start, d.positionOfBatch(d.firstBatchAtLeast(d.batchTimestamp, options.fromTime)));
    }
    if (d && options.atGeneration !== Number.POSITIVE_INFINITY) {
      end = Math.min(end, d.positionOfBatch(d.firstBatchAbove(d.batchGeneration, options.atGeneration)));
    }
    if (d && options.toTime !== Number.POSITIVE_INFINITY) {
      end = Math.min(end, d.positionOfBatch(d.firstBatchAbove(d.batchTimestamp, options.toTime)));
    }
    if (!d) return { events: [], nextPosition: Math.max(start, end) };
    // Wanted event-type codes as a mask indexed by code (codes are dense from 0).
    let wanted: Uint8Array | undefined;
    if (options.types) {
      wanted = new Uint8Array(d.registry.eventTypes.length);
      for (const name of options.types) {
        const code = d.registry.eventCode(name);
        if (code >= 0) wanted[code] = 1;
      }
    }
    this.#spanCount = 0;
    let count = 0;
    let nextPosition = Math.max(start, end);
    const { eventType, eventBatch, eventLength } = d;
    const limit = options.limit;
    for (let p = start; p < end; p++) {
      if (count === limit) {
        nextPosition = p;
        break;
      }
      if (!wanted || wanted[eventType[p]!] === 1) {
        this.#want(eventBatch[p]!, p, eventLength[p]!);
        count++;
      }
    }
    return { events: this.#materialize(d, count, options.verifyCrc), nextPosition };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const byType of this.#fds.values()) {
      for (const bySegment of byType) {
        for (const fd of bySegment ?? []) if (fd !== undefined) this.#io.close(fd);
      }
    }
    this.#fds.clear();
  }

  #assertOpen(): void {
    if (this.#closed) throw new RingStoreError('STORE_CLOSED');
  }

  #batchesOf(domain: string, aggregateType: string, id: bigint): number[] | undefined {
    const d = this.#domains.get(domain);
    if (!d) return undefined;
    const code = d.registry.aggregateCode(aggregateType);
    return code < 0 ? undefined : d.instances[code]?.get(id);
  }

  #applyDomain(entry: DomainDelta): void {
    let d = this.#domains.get(entry.domain);
    if (!d) {
      domainDir(this.#root, entry.domain);
      d = new DomainReadIndex(entry.domain);
      this.#domains.set(entry.domain, d);
    }
    if (!this.#applyRegistry(d, entry.registryBytes) || entry.indexOffset > d.indexEnd) {
      // This delta does not follow what the reader has: catch up from the files instead.
      this.#catchUp(d, true);
      return;
    }
    const skip = d.indexEnd - entry.indexOffset;
    if (skip >= entry.indexBytes.byteLength) return;
    const scan = scanIndex(entry.indexBytes.subarray(skip), `${d.name}/${INDEX_FILE}`, d.scan, {
      baseOffset: d.indexEnd,
      onRecord: d.addRecord,
    });
    d.indexEnd = scan.validEnd;
    this.#generation = Math.max(this.#generation, d.scan.lastGeneration);
    if (scan.damage) throw corruptData({ ...scan.damage, tail: false });
  }

  /** Applies registry records in sequence, skipping ones already known; false on a gap or damage. */
  #applyRegistry(d: DomainReadIndex, bytes: Uint8Array): boolean {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let offset = 0;
    while (offset < bytes.byteLength) {
      const record = decodeRegistryRecord(bytes, view, offset);
      if (typeof record === 'string') return false;
      if (record.sequence >= d.registry.records && !d.registry.accept(record)) return false;
      offset += record.recordLength;
    }
    return true;
  }

  /** Reads what the files hold beyond what the index has applied (valid records only). */
  #catchUp(d: DomainReadIndex, strict: boolean): void {
    const folder = domainDir(this.#root, d.name);
    const registryBytes = readWholeFile(this.#io, joinPath(folder, REGISTRY_FILE));
    this.#applyRegistry(d, registryBytes);
    const indexBytes = readWholeFile(this.#io, joinPath(folder, INDEX_FILE));
    if (indexBytes.byteLength <= d.indexEnd) return;
    const scan = scanIndex(indexBytes.subarray(d.indexEnd), `${d.name}/${INDEX_FILE}`, d.scan, {
      baseOffset: d.indexEnd,
      onRecord: d.addRecord,
    });
    d.indexEnd = scan.validEnd;
    this.#generation = Math.max(this.#generation, d.scan.lastGeneration);
    if (strict && scan.damage && !scan.damage.tail) throw corruptData(scan.damage);
  }

  /**
   * Adds event p of batch b to the spans to materialize. Consecutive events of one batch form one
   * span (their data is contiguous in the segment) of at most MAX_READ_BYTES.
   */
  #want(b: number, p: number, length: number): void {
    const s = this.#spanCount - 1;
    if (
      s >= 0 &&
      this.#spanBatch[s] === b &&
      this.#spanFirst[s]! + this.#spanEvents[s]! === p &&
      this.#spanBytes[s]! + length <= MAX_READ_BYTES
    ) {
      this.#spanEvents[s]!++;
      this.#spanBytes[s]! += length;
      return;
    }
    this.#addSpan(b, p, 1, length);
  }

  /** Adds events first…end-1 of batch b, as #want would one by one, with one span per MAX_READ_BYTES. */
  #wantRange(b: number, first: number, end: number, eventLength: Uint16Array): void {
    let spanFirst = first;
    let bytes = 0;
    for (let p = first; p < end; p++) {
      const length = eventLength[p]!;
      if (bytes + length > MAX_READ_BYTES) {
        this.#addSpan(b, spanFirst, p - spanFirst, bytes);
        spanFirst = p;
        bytes = 0;
      }
      bytes += length;
    }
    if (end > spanFirst) this.#addSpan(b, spanFirst, end - spanFirst, bytes);
  }

  #addSpan(b: number, first: number, events: number, bytes: number): void {
    if (this.#spanCount === this.#spanBatch.length) this.#growSpans();
    const t = this.#spanCount++;
    this.#spanBatch[t] = b;
    this.#spanFirst[t] = first;
    this.#spanEvents[t] = events;
    this.#spanBytes[t] = bytes;
  }

  #growSpans(): void {
    const capacity = this.#spanBatch.length * 2;
    const batch = new Uint32Array(capacity);
    const first = new Float64Array(capacity);
    const events = new Uint32Array(capacity);
    const bytes = new Float64Array(capacity);
    batch.set(this.#spanBatch);
    first.set(this.#spanFirst);
    events.set(this.#spanEvents);
    bytes.set(this.#spanBytes);
    this.#spanBatch = batch;
    this.#spanFirst = first;
    this.#spanEvents = events;
    this.#spanBytes = bytes;
  }

  /**
   * Builds the StoredEvents of the spans #want collected (`count` events, ascending positions). All
   * their data goes into one buffer per call (each event's data is a view of it, so a caller may
   * mutate what it got without touching the store or other results). The data files are read in
   * runs: consecutive spans that lie in the same segment file, in increasing order and close
   * together (a scan in commit order reads a segment almost sequentially), are merged into one
   * positional read of at most MAX_READ_BYTES. A run whose spans are adjacent is read straight into
   * the result buffer; one with gaps (events skipped by a type filter, other instances' batches) is
   * read into a scratch buffer and the wanted bytes copied out.
   */
  #materialize(d: DomainReadIndex, count: number, verifyCrc: boolean): StoredEvent[] {
    const events: StoredEvent[] = new Array(count);
    const spans = this.#spanCount;
    if (spans === 0) return events;
    const spanBatch = this.#spanBatch;
    const spanFirst = this.#spanFirst;
    const spanEvents = this.#spanEvents;
    const spanBytes = this.#spanBytes;
    const { eventOffset, eventLength, eventCrc, eventType } = d;
    const { batchAggregateType, batchSegment, batchDataOffset } = d;
    let total = 0;
    for (let s = 0; s < spans; s++) total += spanBytes[s]!;
    // Not zero-filled: every byte is overwritten by a read (a short read throws) before it is seen.
    const outBuffer = Buffer.allocUnsafeSlow(total).buffer;
    const out = new Uint8Array(outBuffer, 0, total);
    const registry = d.registry;
    const eventTypes = registry.eventTypes;
    const fds = this.#segmentFdsOf(d);
    let outAt = 0;
    let k = 0;
    let s = 0;
    while (s < spans) {
      const firstBatch = spanBatch[s]!;
      const typeCode = batchAggregateType[firstBatch]!;
      const segment = batchSegment[firstBatch]!;
      const runStart = batchDataOffset[firstBatch]! + eventOffset[spanFirst[s]!]!;
      let runEnd = runStart + spanBytes[s]!;
      let dense = true;
      let batch = firstBatch;
      let t = s + 1;
      for (; t < spans; t++) {
        const b = spanBatch[t]!;
        if (b !== batch && (batchAggregateType[b] !== typeCode || batchSegment[b] !== segment)) break;
        const start = batchDataOffset[b]! + eventOffset[spanFirst[t]!]!;
        const end = start + spanBytes[t]!;
        if (start < runEnd || start - runEnd > MERGE_GAP_BYTES || end - runStart > MAX_READ_BYTES) break;
        if (start !== runEnd) dense = false;
        runEnd = end;
        batch = b;
      }
      const runLength = runEnd - runStart;
      if (dense) {
        this.#readRun(d, fds, firstBatch, out, outAt, runLength, runStart);
      } else {
        const scratch = this.#scratchOf(runLength);
        this.#readRun(d, fds, firstBatch, scratch, 0, runLength, runStart);
        let at = outAt;
        for (let u = s; u < t; u++) {
          const from = batchDataOffset[spanBatch[u]!]! + eventOffset[spanFirst[u]!]! - runStart;
          const bytes = spanBytes[u]!;
          out.set(scratch.subarray(from, from + bytes), at);
          at += bytes;
        }
      }
      // Batch fields are the same for all events of a batch: load them (and box the id) once per batch.
      let b = -1;
      let aggregateType = '';
      let aggregateId = 0n;
      let versionBase = 0;
      let generation = 0;
      let timestamp = 0;
      for (let u = s; u < t; u++) {
        if (spanBatch[u] !== b) {
          b = spanBatch[u]!;
          aggregateType = registry.aggregateTypes[batchAggregateType[b]!]!;
          aggregateId = d.batchAggregateId[b]!;
          versionBase = d.batchFirstVersion[b]! - d.batchFirstPosition[b]!;
          generation = d.batchGeneration[b]!;
          timestamp = d.batchTimestamp[b]!;
        }
        const first = spanFirst[u]!;
        const end = first + spanEvents[u]!;
        for (let p = first; p < end; p++) {
          const length = eventLength[p]!;
          const data = new Uint8Array(outBuffer, outAt, length);
          const crc = eventCrc[p]!;
          if (verifyCrc && crc32(data) !== crc) throw this.#crcMismatch(d, b, p);
          events[k++] = {
            domain: d.name,
            aggregateType,
            aggregateId,
            version: versionBase + p,
            position: p,
            generation,
            timestamp,
            type: eventTypes[eventType[p]!]!,
            data,
            metadata: new Uint8Array(0),
            crc,
          };
          outAt += length;
        }
      }
      s = t;
    }
    return events;
  }

  /** Reads `length` bytes at `position` of batch b's segment file into buffer[offset…]; CORRUPT_DATA when short. */
  #readRun(
    d: DomainReadIndex,
    fds: (number | undefined)[][],
    b: number,
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): void {
    if (length === 0) return;
    const typeCode = d.batchAggregateType[b]!;
    const segment = d.batchSegment[b]!;
    let got = -1;
    try {
      let fd = fds[typeCode]?.[segment];
      if (fd === undefined) {
        fd = this.#io.open(joinPath(this.#root, this.#segmentFile(d, b)), 'read');
        let bySegment = fds[typeCode];
        if (!bySegment) {
          bySegment = [];
          fds[typeCode] = bySegment;
        }
        bySegment[segment] = fd;
      }
      got = this.#io.read(fd, buffer, offset, length, position);
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'ENOENT') throw err;
    }
    if (got !== length) {
      const file = this.#segmentFile(d, b);
      const missingAt = position + Math.max(0, got);
      throw new RingStoreError('CORRUPT_DATA', `${file}: event data at offset ${missingAt} is missing`, {
        file,
        offset: missingAt,
        reason: 'data missing',
      });
    }
  }

  #crcMismatch(d: DomainReadIndex, b: number, p: number): RingStoreError {
    const file = this.#segmentFile(d, b);
    const offset = d.batchDataOffset[b]! + d.eventOffset[p]!;
    return new RingStoreError('CORRUPT_DATA', `${file}: event data at offset ${offset} fails its CRC`, {
      file,
      offset,
      reason: 'event crc',
    });
  }

  /** Open segment descriptors of a domain, by aggregate-type code then segment number. */
  #segmentFdsOf(d: DomainReadIndex): (number | undefined)[][] {
    let fds = this.#fds.get(d.name);
    if (!fds) {
      fds = [];
      this.#fds.set(d.name, fds);
    }
    return fds;
  }

  /** `<domain>/<aggregateType>.<segment>`: the data file of batch b, for opening and for messages. */
  #segmentFile(d: DomainReadIndex, b: number): string {
    const aggregateType = d.registry.aggregateTypes[d.batchAggregateType[b]!]!;
    return `${d.name}/${segmentFileName(aggregateType, d.batchSegment[b]!)}`;
  }

  /** A reusable buffer of at least `length` bytes for runs read with gaps (at most MAX_READ_BYTES). */
  #scratchOf(length: number): Uint8Array {
    if (this.#scratch.byteLength < length) {
      this.#scratch = new Uint8Array(
        Math.min(MAX_READ_BYTES, Math.max(length, this.#scratch.byteLength * 2, 4096)),
      );
    }
    return this.#scratch;
  }
}
