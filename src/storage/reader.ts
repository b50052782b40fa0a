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

export interface StorageReaderOptions {
  io?: FileIO;
}

/**
 * The read side over a store directory (DESIGN.md §4): an in-memory index per domain built from the
 * index files at open and extended with each commit's CommitDelta, and payloads read from the data
 * segments with positional reads (one read per batch span; descriptors are cached).
 *
 * It never writes. It accepts the valid prefix of each file and ignores what follows: the writer's
 * recovery (StorageWriter.open) is the one that decides about damaged tails. Every option behaves
 * exactly as in MemoryEventStore.
 */
export class StorageReader {
  readonly #root: string;
  readonly #io: FileIO;
  readonly #domains = new Map<string, DomainReadIndex>();
  readonly #fds = new Map<string, number>();
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
    let typeCodes: Set<number> | undefined;
    if (options.types) {
      typeCodes = new Set();
      for (const name of options.types) {
        const code = d.registry.eventCode(name);
        if (code >= 0) typeCodes.add(code);
      }
    }
    const positions: number[] = [];
    let nextPosition = Math.max(start, end);
    const eventType = d.eventType;
    for (let p = start; p < end; p++) {
      if (positions.length === options.limit) {
        nextPosition = p;
        break;
      }
      if (!typeCodes || typeCodes.has(eventType[p]!)) positions.push(p);
    }
    return { events: this.#materialize(d, positions, options.verifyCrc), nextPosition };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const fd of this.#fds.values()) this.#io.close(fd);
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

  /** Builds StoredEvents for ascending positions, reading each batch's span of data in one call. */
  #materialize(d: DomainReadIndex, positions: number[], verifyCrc: boolean): StoredEvent[] {
    const events: StoredEvent[] = new Array(positions.length);
    const registry = d.registry;
    let i = 0;
    while (i < positions.length) {
      const first = positions[i]!;
      const b = d.eventBatch[first]!;
      let last = i;
      while (last + 1 < positions.length && d.eventBatch[positions[last + 1]!] === b) last++;
      const lastPosition = positions[last]!;
      const spanStart = d.eventOffset[first]!;
      const spanEnd = d.eventOffset[lastPosition]! + d.eventLength[lastPosition]!;
      const aggregateType = registry.aggregateTypes[d.batchAggregateType[b]!]!;
      const file = `${d.name}/${segmentFileName(aggregateType, d.batchSegment[b]!)}`;
      const fileOffset = d.batchDataOffset[b]! + spanStart;
      const data = this.#readData(file, fileOffset, spanEnd - spanStart);
      const firstPosition = d.batchFirstPosition[b]!;
      const firstVersion = d.batchFirstVersion[b]!;
      const generation = d.batchGeneration[b]!;
      const timestamp = d.batchTimestamp[b]!;
      const aggregateId = d.batchAggregateId[b]!;
      for (let k = i; k <= last; k++) {
        const p = positions[k]!;
        const at = d.eventOffset[p]! - spanStart;
        const bytes = data.subarray(at, at + d.eventLength[p]!);
        const crc = d.eventCrc[p]!;
        if (verifyCrc && crc32(bytes) !== crc) {
          throw new RingStoreError(
            'CORRUPT_DATA',
            `${file}: event data at offset ${fileOffset + at} fails its CRC`,
            {
              file,
              offset: fileOffset + at,
              reason: 'event crc',
            },
          );
        }
        events[k] = {
          domain: d.name,
          aggregateType,
          aggregateId,
          version: firstVersion + (p - firstPosition),
          position: p,
          generation,
          timestamp,
          type: registry.eventTypes[d.eventType[p]!]!,
          data: bytes,
          crc,
        };
      }
      i = last + 1;
    }
    return events;
  }

  #readData(file: string, offset: number, length: number): Uint8Array {
    const buffer = new Uint8Array(length);
    if (length === 0) return buffer;
    let fd = this.#fds.get(file);
    let got = -1;
    try {
      if (fd === undefined) {
        fd = this.#io.open(joinPath(this.#root, file), 'read');
        this.#fds.set(file, fd);
      }
      got = this.#io.read(fd, buffer, 0, length, offset);
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'ENOENT') throw err;
    }
    if (got !== length) {
      throw new RingStoreError('CORRUPT_DATA', `${file}: event data at offset ${offset} is missing`, {
        file,
        offset,
        reason: 'data missing',
      });
    }
    return buffer;
  }
}
