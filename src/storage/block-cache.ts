import type { FileIO } from './file-io.js';

/**
 * A least-recently-used cache of 4096-byte file blocks, bounded by the bytes it holds, shared by the
 * derived index files (positions, instance runs). Block `n` of a file is its bytes
 * [n * 4096, (n + 1) * 4096); a block that reaches past the end of the file is shorter (possibly
 * empty).
 *
 * Callers cache only bytes that never change (immutable files, or ranges of a file below a
 * checkpoint), and they must not mutate the arrays `block` returns: the next caller gets the same
 * array. A `check` callback vets a block once, when it is read from disk; a block it refuses (by
 * throwing) is not kept, so the next request reads and checks it again.
 *
 * The recency order is a Map's insertion order: a hit deletes and re-inserts its entry, eviction
 * takes the first entries.
 */
export const CACHE_BLOCK_BYTES = 4096;

export interface BlockCacheStats {
  capacityBytes: number;
  bytes: number;
  hits: number;
  misses: number;
}

interface CachedBlock {
  fileKey: number;
  bytes: Uint8Array;
}

export class BlockCache {
  readonly #capacityBytes: number;
  /** Cached blocks by `${fileKey}:${blockNo}`, least recently used first. */
  readonly #blocks = new Map<string, CachedBlock>();
  #bytes = 0;
  #hits = 0;
  #misses = 0;
  #nextFileKey = 1;

  /** `capacityBytes` bounds the bytes held; 0 caches nothing. */
  constructor(capacityBytes: number) {
    if (!Number.isSafeInteger(capacityBytes) || capacityBytes < 0) {
      throw new RangeError(`block cache capacity must be a safe integer >= 0, got ${capacityBytes}`);
    }
    this.#capacityBytes = capacityBytes;
  }

  /** A new key for a file; keys are never reused. */
  newFileKey(): number {
    return this.#nextFileKey++;
  }

  /**
   * Block `blockNo` of the file: from the cache, or read with `io.read` on a miss (then kept, the
   * least recently used blocks evicted beyond capacity). `check` runs once per read from disk,
   * before caching; it throws to refuse the block, and a refused block is not cached.
   * The returned array must not be mutated.
   */
  block(
    fileKey: number,
    io: FileIO,
    fd: number,
    blockNo: number,
    check?: (block: Uint8Array, blockNo: number) => void,
  ): Uint8Array {
    const key = `${fileKey}:${blockNo}`;
    const cached = this.#blocks.get(key);
    if (cached) {
      this.#hits++;
      this.#blocks.delete(key);
      this.#blocks.set(key, cached);
      return cached.bytes;
    }
    this.#misses++;
    const buffer = new Uint8Array(CACHE_BLOCK_BYTES);
    const got = io.read(fd, buffer, 0, CACHE_BLOCK_BYTES, blockNo * CACHE_BLOCK_BYTES);
    const bytes = got === CACHE_BLOCK_BYTES ? buffer : buffer.slice(0, got);
    check?.(bytes, blockNo);
    this.#keep(key, { fileKey, bytes });
    return bytes;
  }

  /** Forgets every block of a file. */
  dropFile(fileKey: number): void {
    for (const [key, cached] of this.#blocks) {
      if (cached.fileKey !== fileKey) continue;
      this.#blocks.delete(key);
      this.#bytes -= cached.bytes.byteLength;
    }
  }

  stats(): BlockCacheStats {
    return { capacityBytes: this.#capacityBytes, bytes: this.#bytes, hits: this.#hits, misses: this.#misses };
  }

  #keep(key: string, block: CachedBlock): void {
    const size = block.bytes.byteLength;
    if (size === 0 || size > this.#capacityBytes) return;
    this.#blocks.set(key, block);
    this.#bytes += size;
    for (const [oldestKey, oldest] of this.#blocks) {
      if (this.#bytes <= this.#capacityBytes) break;
      this.#blocks.delete(oldestKey);
      this.#bytes -= oldest.bytes.byteLength;
    }
  }
}
