import { RingStoreError } from '../errors.js';
import { STORAGE_NAME_PATTERN } from '../model/names.js';
import type { ValidGetOptions, ValidReadOptions } from '../model/queries.js';
import type { DomainReadResult, InstanceEvents } from '../types.js';
import { BlockCache } from './block-cache.js';
import { refuseIncomplete } from './build-marker.js';
import { DomainView } from './domain-view.js';
import { type Span, spansOf } from './event-materializer.js';
import { type FileIO, realFileIO } from './file-io.js';
import { domainDir, joinPath } from './format.js';
import { RecordCache } from './record-cache.js';
import { integerOption } from './storage-options.js';
import type { BatchHead, CacheStats, CommitDelta } from './types.js';

export const DEFAULT_READER_INDEX_CACHE_BYTES = 16 * 1024 * 1024;

export interface StorageReaderOptions {
  io?: FileIO;
  /** Bytes of index files (runs, positions, index records) kept in memory (default 16 MiB). */
  indexCacheBytes?: number;
}

/**
 * The read side over a store directory (docs/READING.md): per domain a DomainView — the index files
 * on disk below the domain's checkpoint, read through one bounded BlockCache, and the records past
 * it in memory — and payloads read from the data segments with positional reads (nearby spans
 * merged into one read; descriptors are cached).
 *
 * It never writes. It accepts the valid prefix of each file and ignores what follows: the writer's
 * recovery (StorageWriter.open) is the one that decides about damaged tails. Every option behaves
 * exactly as in MemoryEventStore.
 */
export class StorageReader {
  readonly #root: string;
  readonly #io: FileIO;
  readonly #cache: BlockCache;
  readonly #records: RecordCache;
  readonly #domains = new Map<string, DomainView>();
  #generation = 0;
  #closed = false;

  private constructor(root: string, io: FileIO, cacheBytes: number) {
    this.#root = root;
    this.#io = io;
    // Half for the blocks of runs and positions, half for index records (instance reads).
    this.#cache = new BlockCache(Math.floor(cacheBytes / 2));
    this.#records = new RecordCache(cacheBytes - Math.floor(cacheBytes / 2));
  }

  static open(dir: string, options: StorageReaderOptions = {}): StorageReader {
    const cacheBytes = integerOption(
      'indexCacheBytes',
      options.indexCacheBytes ?? DEFAULT_READER_INDEX_CACHE_BYTES,
      0,
    );
    const reader = new StorageReader(dir, options.io ?? realFileIO, cacheBytes);
    const io = reader.#io;
    refuseIncomplete(io, dir);
    if (io.exists(dir)) {
      for (const name of io.readdir(dir)) {
        if (!STORAGE_NAME_PATTERN.test(name) || !io.isDirectory(joinPath(dir, name))) continue;
        const domain = new DomainView(io, dir, name, reader.#cache, reader.#records);
        reader.#domains.set(name, domain);
        domain.load(false);
        reader.#generation = Math.max(reader.#generation, domain.lastGeneration);
      }
    }
    return reader;
  }

  /** The last generation this reader has seen committed. */
  get generation(): number {
    return this.#generation;
  }

  /** Sizes and hit counts of the reader's caches (for metrics). */
  cacheStats(): CacheStats[] {
    const blocks = this.#cache.stats();
    const records = this.#records.stats();
    return [
      {
        cache: 'reader-index',
        size: blocks.bytes,
        capacity: blocks.capacityBytes,
        unit: 'bytes',
        hits: blocks.hits,
        misses: blocks.misses,
      },
      {
        cache: 'reader-records',
        size: records.bytes,
        capacity: records.capacityBytes,
        unit: 'bytes',
        hits: records.hits,
        misses: records.misses,
      },
    ];
  }

  /** Takes one append call's commit; it is applied to a domain's index on that domain's next read. */
  apply(delta: CommitDelta): void {
    this.#assertOpen();
    for (const entry of delta.domains) {
      let d = this.#domains.get(entry.domain);
      if (!d) {
        domainDir(this.#root, entry.domain);
        d = new DomainView(this.#io, this.#root, entry.domain, this.#cache, this.#records);
        this.#domains.set(entry.domain, d);
      }
      d.enqueue(entry);
    }
    this.#generation = Math.max(this.#generation, delta.generation);
  }

  version(domain: string, aggregateType: string, id: bigint): number {
    const d = this.#domains.get(domain);
    const code = d?.registry.aggregateCode(aggregateType) ?? -1;
    if (!d || code < 0) return 0;
    const batches = d.batchesOf(code, id);
    const last = batches[batches.length - 1];
    return last === undefined ? 0 : last.firstVersion + last.eventCount - 1;
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
    const d = this.#domains.get(domain);
    if (!d) return { version: 0, events: [] };
    d.settle();
    const code = d.registry.aggregateCode(aggregateType);
    if (code < 0) return { version: 0, events: [] };
    const batches = d.batchesOf(code, id);
    // An instance's batches have increasing generations: the visible ones are a prefix.
    let visible = batches.length;
    if (options.atGeneration !== Number.POSITIVE_INFINITY) {
      let low = 0;
      while (low < visible) {
        const mid = (low + visible) >>> 1;
        if (batches[mid]!.generation > options.atGeneration) visible = mid;
        else low = mid + 1;
      }
    }
    if (visible === 0) return { version: 0, events: [] };
    const lastBatch = batches[visible - 1]!;
    const version = lastBatch.firstVersion + lastBatch.eventCount - 1;
    const to = Math.min(options.toVersion, version);
    const from = options.fromVersion;
    const spans: Span[] = [];
    if (from <= to && options.limit > 0) {
      // The batch holding `from`: the last one whose first version is <= from.
      let low = 0;
      let high = visible;
      while (low < high) {
        const mid = (low + high) >>> 1;
        if (batches[mid]!.firstVersion <= from) low = mid + 1;
        else high = mid;
      }
      let wanted = Math.min(options.limit, to - from + 1);
      for (let k = Math.max(0, low - 1); k < visible && wanted > 0; k++) {
        const batch = batches[k]!;
        const first = Math.max(0, from - batch.firstVersion);
        const count = Math.min(batch.eventCount - first, wanted);
        if (count <= 0) continue;
        const { record, view } = d.recordAt(batch.indexOffset, batch.eventCount);
        spansOf(record, view, first, count, spans);
        wanted -= count;
      }
    }
    return { version, events: d.materializer.materialize(spans, d.registry, options.verifyCrc) };
  }

  read(domain: string, options: ValidReadOptions): DomainReadResult {
    this.#assertOpen();
    const d = this.#domains.get(domain);
    if (!d) return { events: [], nextPosition: options.fromPosition };
    const total = d.eventCount;
    const fromPosition = options.fromPosition;
    const fromTime = options.fromTime;
    const toTime = options.toTime;
    const atGeneration = options.atGeneration;
    const limit = options.limit;
    // Wanted event-type codes as a mask indexed by code (codes are dense from 0).
    let wanted: Uint8Array | undefined;
    if (options.types) {
      wanted = new Uint8Array(d.registry.eventTypes.length);
      for (const name of options.types) {
        const code = d.registry.eventCode(name);
        if (code >= 0) wanted[code] = 1;
      }
    }
    // `start`: the first position at or after fromPosition whose batch is not before fromTime;
    // `end`: the first position of a batch past atGeneration or toTime (or the domain's end).
    let start = fromPosition;
    let startKnown = fromTime === Number.NEGATIVE_INFINITY;
    let end = total;
    let nextPosition = -1;
    let count = 0;
    const spans: Span[] = [];
    if (fromPosition < total) {
      let offset = d.offsetForPosition(fromPosition);
      if (!startKnown) offset = Math.max(offset, d.offsetForTime(fromTime));
      d.forEachRecord(offset, (record, view) => {
        const first = record.firstPosition;
        const afterLast = first + record.eventCount;
        if (afterLast <= fromPosition) return true;
        if (!startKnown) {
          if (record.timestamp < fromTime) return true;
          start = Math.max(start, first);
          startKnown = true;
        }
        if (record.generation > atGeneration || record.timestamp > toTime) {
          end = first;
          return false;
        }
        let spanFirst = -1;
        for (let p = Math.max(first, start); p < afterLast; p++) {
          if (count === limit) {
            nextPosition = p;
            break;
          }
          const matches =
            wanted === undefined ||
            wanted[view.getUint16(record.headersOffset + (p - first) * 12 + 4, true)] === 1;
          if (matches) {
            if (spanFirst < 0) spanFirst = p;
            count++;
          } else if (spanFirst >= 0) {
            spansOf(record, view, spanFirst - first, p - spanFirst, spans);
            spanFirst = -1;
          }
        }
        const stop = nextPosition >= 0 ? nextPosition : afterLast;
        if (spanFirst >= 0) spansOf(record, view, spanFirst - first, stop - spanFirst, spans);
        return nextPosition < 0;
      });
      if (!startKnown) start = total;
    }
    if (nextPosition < 0) nextPosition = Math.max(start, end);
    return { events: d.materializer.materialize(spans, d.registry, options.verifyCrc), nextPosition };
  }

  /**
   * The batches of a domain that start at or after `fromPosition`, at most `limit`, as their index
   * records describe them (idempotency keys included): for tools that copy a store batch by batch
   * (the cluster import, docs/CLUSTER.md); their events come from read().
   */
  batches(domain: string, fromPosition: number, limit: number): BatchHead[] {
    this.#assertOpen();
    const d = this.#domains.get(domain);
    const heads: BatchHead[] = [];
    if (!d || fromPosition >= d.eventCount || limit <= 0) return heads;
    d.settle();
    d.forEachRecord(d.offsetForPosition(fromPosition), (record) => {
      if (record.firstPosition < fromPosition) return true;
      heads.push({
        firstPosition: record.firstPosition,
        eventCount: record.eventCount,
        aggregateType: d.registry.aggregateTypes[record.aggregateTypeCode]!,
        aggregateId: record.aggregateId,
        firstVersion: record.firstVersion,
        generation: record.generation,
        timestamp: record.timestamp,
        idempotencyKey: record.idempotencyKey,
      });
      return heads.length < limit;
    });
    return heads;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const d of this.#domains.values()) d.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new RingStoreError('STORE_CLOSED');
  }
}
