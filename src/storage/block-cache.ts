import type { FileIO } from './file-io.js';

/**
 * A byte-bounded, least-recently-used cache of 4096-byte file blocks, shared by the readers of the
 * derived index files (instance runs, positions). Block `n` of a file holds its bytes
 * [n × 4096, (n + 1) × 4096); the block at the end of a file is shorter (possibly empty).
 *
 * Callers only cache bytes that can never change: immutable files, or ranges of a file below a
 * checkpoint. A short block is cached as read, so a file that grows past it must be read under a
 * new file key (or dropped with dropFile) to see the new bytes.
 *
 * Every cached block counts as CACHE_BLOCK_BYTES against the capacity (a short block keeps its
 * 4096-byte buffer), so `bytes` is the memory held. Arrays handed out are shared with the cache and
 * with every other caller: they must never be mutated.
 */
export const CACHE_BLOCK_BYTES = 4096;

export interface BlockCacheStats {
  capacityBytes: number;
  bytes: number;
  hits: number;
  misses: number;
}

/** One cached block, a link of the recency list (newest at the head). */
interface CachedBlock {
  readonly fileKey: number;
  readonly blockNo: number;
  readonly bytes: Uint8Array;
  newer: CachedBlock | undefined;
  older: CachedBlock | undefined;
}

export class BlockCache {
  readonly #capacityBytes: number;
  /** Cached blocks by file key, then block number. */
  readonly #files = new Map<number, Map<number, CachedBlock>>();
  #newest: CachedBlock | undefined;
  #oldest: CachedBlock | undefined;
  #bytes = 0;
  #hits = 0;
  #misses = 0;
  #nextFileKey = 1;

  /** `capacityBytes` bounds the bytes held; below CACHE_BLOCK_BYTES (e.g. 0) nothing is cached. */
  constructor(capacityBytes: number) {
    if (!Number.isSafeInteger(capacityBytes) || capacityBytes < 0) {
      throw new RangeError(`capacityBytes must be a non-negative integer, got ${capacityBytes}`);
    }
    this.#capacityBytes = capacityBytes;
  }

  /** A new key for a file; keys are never reused. */
  newFileKey(): number {
    return this.#nextFileKey++;
  }

  /**
   * Block `blockNo` ([blockNo × 4096, +4096)) of the file: from the cache, or read with io.read on a
   * miss (then kept, least-recently-used evicted beyond capacity). A block past the end of the file
   * is shorter (possibly empty). `check(block, blockNo)` runs once per read from disk, before
   * caching: it throws to refuse the block (e.g. a CRC failure), and a refused block is not cached.
   * The returned array must not be mutated.
   */
  block(
    fileKey: number,
    io: FileIO,
    fd: number,
    blockNo: number,
    check?: (block: Uint8Array, blockNo: number) => void,
  ): Uint8Array {
    const blocks = this.#files.get(fileKey);
    const cached = blocks?.get(blockNo);
    if (cached !== undefined) {
      this.#hits++;
      this.#makeNewest(cached);
      return cached.bytes;
    }
    this.#misses++;
    const buffer = new Uint8Array(CACHE_BLOCK_BYTES);
    const got = io.read(fd, buffer, 0, CACHE_BLOCK_BYTES, blockNo * CACHE_BLOCK_BYTES);
    const bytes = got === CACHE_BLOCK_BYTES ? buffer : buffer.subarray(0, got);
    check?.(bytes, blockNo);
    if (this.#capacityBytes >= CACHE_BLOCK_BYTES) this.#keep(fileKey, blockNo, bytes);
    return bytes;
  }

  /** Forgets every block of a file. */
  dropFile(fileKey: number): void {
    const blocks = this.#files.get(fileKey);
    if (blocks === undefined) return;
    for (const cached of blocks.values()) this.#unlink(cached);
    this.#bytes -= blocks.size * CACHE_BLOCK_BYTES;
    this.#files.delete(fileKey);
  }

  stats(): BlockCacheStats {
    return { capacityBytes: this.#capacityBytes, bytes: this.#bytes, hits: this.#hits, misses: this.#misses };
  }

  #keep(fileKey: number, blockNo: number, bytes: Uint8Array): void {
    while (this.#bytes + CACHE_BLOCK_BYTES > this.#capacityBytes && this.#oldest !== undefined) {
      this.#evict(this.#oldest);
    }
    let blocks = this.#files.get(fileKey);
    if (blocks === undefined) {
      blocks = new Map();
      this.#files.set(fileKey, blocks);
    }
    const cached: CachedBlock = { fileKey, blockNo, bytes, newer: undefined, older: undefined };
    blocks.set(blockNo, cached);
    this.#bytes += CACHE_BLOCK_BYTES;
    this.#pushNewest(cached);
  }

  #evict(cached: CachedBlock): void {
    this.#unlink(cached);
    this.#bytes -= CACHE_BLOCK_BYTES;
    const blocks = this.#files.get(cached.fileKey)!;
    blocks.delete(cached.blockNo);
    if (blocks.size === 0) this.#files.delete(cached.fileKey);
  }

  #makeNewest(cached: CachedBlock): void {
    if (this.#newest === cached) return;
    this.#unlink(cached);
    this.#pushNewest(cached);
  }

  #pushNewest(cached: CachedBlock): void {
    cached.older = this.#newest;
    cached.newer = undefined;
    if (this.#newest !== undefined) this.#newest.newer = cached;
    this.#newest = cached;
    if (this.#oldest === undefined) this.#oldest = cached;
  }

  #unlink(cached: CachedBlock): void {
    if (cached.newer === undefined) this.#newest = cached.older;
    else cached.newer.older = cached.older;
    if (cached.older === undefined) this.#oldest = cached.newer;
    else cached.older.newer = cached.newer;
    cached.newer = undefined;
    cached.older = undefined;
  }
}
