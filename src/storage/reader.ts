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
    const positions: number[] = [];
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
      for (let k = Math.max(0, low - 1); k < visible && positions.length < limit; k++) {
        const b = list[k]!;
        const firstVersion = d.batchFirstVersion[b]!;
        const firstPosition = d.batchFirstPosition[b]!;
        const count = d.batchEventCount[b]!;
        for (let i = Math.max(0, from - firstVersion); i < count && positions.length < limit; i++) {
          positions.push(firstPosition + i);
        }
      }
    }
    return { version, events: this.#materialize(d, positions, options.verifyCrc) };
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
    const positions: number[] = [];
    let nextPosition = Math.max(start, end);
    const eventType = d.eventType;
    const limit = options.limit;
    for (let p = start; p < end; p++) {
      if (positions.length === limit) {
        nextPosition = p;
        break;
      }
      if (!wanted || wanted[eventType[p]!] === 1) positions.push(p);
    }
    return { events: this.#materialize(d, positions, options.verifyCrc), nextPosition };
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
   * Builds StoredEvents for ascending positions. All their data goes into one buffer per call (each
   * event's data is a view of it, so a caller may mutate what it got without touching the store or
   * other results). The data file is read in runs: the spans of consecutive events that lie in the
   * same segment file, in increasing order and close together (a scan in commit order reads a
   * segment almost sequentially), are merged into one positional read of at most MAX_READ_BYTES.
   * A run whose wanted bytes are contiguous is read straight into the result buffer; one with gaps
   * (events skipped by a type filter) is read into a scratch buffer and the wanted bytes copied out.
   */
  #materialize(d: DomainReadIndex, positions: number[], verifyCrc: boolean): StoredEvent[] {
    const count = positions.length;
    const events: StoredEvent[] = new Array(count);
    if (count === 0) return events;
    const { eventBatch, eventOffset, eventLength, eventCrc, eventType } = d;
    const { batchAggregateType, batchSegment, batchDataOffset } = d;
    let total = 0;
    for (let k = 0; k < count; k++) total += eventLength[positions[k]!]!;
    const out = new Uint8Array(total);
    const outBuffer = out.buffer;
    const registry = d.registry;
    const eventTypes = registry.eventTypes;
    const fds = this.#segmentFdsOf(d);
    let outAt = 0;
    let i = 0;
    while (i < count) {
      const first = positions[i]!;
      const firstBatch = eventBatch[first]!;
      const typeCode = batchAggregateType[firstBatch]!;
      const segment = batchSegment[firstBatch]!;
      const runStart = batchDataOffset[firstBatch]! + eventOffset[first]!;
      let runEnd = runStart + eventLength[first]!;
      let dense = true;
      let batch = firstBatch;
      let j = i + 1;
      for (; j < count; j++) {
        const p = positions[j]!;
        const b = eventBatch[p]!;
        if (b !== batch && (batchAggregateType[b] !== typeCode || batchSegment[b] !== segment)) break;
        const start = batchDataOffset[b]! + eventOffset[p]!;
        const end = start + eventLength[p]!;
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
        for (let k = i; k < j; k++) {
          const p = positions[k]!;
          const from = batchDataOffset[eventBatch[p]!]! + eventOffset[p]! - runStart;
          const length = eventLength[p]!;
          out.set(scratch.subarray(from, from + length), at);
          at += length;
        }
      }
      for (let k = i; k < j; k++) {
        const p = positions[k]!;
        const b = eventBatch[p]!;
        const length = eventLength[p]!;
        const data = new Uint8Array(outBuffer, outAt, length);
        const crc = eventCrc[p]!;
        if (verifyCrc && crc32(data) !== crc) {
          const file = this.#segmentFile(d, b);
          const offset = batchDataOffset[b]! + eventOffset[p]!;
          throw new RingStoreError('CORRUPT_DATA', `${file}: event data at offset ${offset} fails its CRC`, {
            file,
            offset,
            reason: 'event crc',
          });
        }
        const firstPosition = d.batchFirstPosition[b]!;
        events[k] = {
          domain: d.name,
          aggregateType: registry.aggregateTypes[batchAggregateType[b]!]!,
          aggregateId: d.batchAggregateId[b]!,
          version: d.batchFirstVersion[b]! + (p - firstPosition),
          position: p,
          generation: d.batchGeneration[b]!,
          timestamp: d.batchTimestamp[b]!,
          type: eventTypes[eventType[p]!]!,
          data,
          crc,
        };
        outAt += length;
      }
      i = j;
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
