import { RingStoreError } from '../errors.js';
import { crc32 } from '../model/crc.js';
import { type BlockCache, CACHE_BLOCK_BYTES } from './block-cache.js';
import { type FileIO, writeWholeFile } from './file-io.js';

/**
 * A blocked Bloom filter of the instances of one run (`instances-<id>.bloom`, beside the run): it
 * answers "this run has no batch of this instance" without reading the run, which is what a put
 * to a new instance asks of every run.
 *
 *   block b (4096 bytes):  4092 bytes of filter bits | u32 crc of those bytes
 *
 * An instance (aggregate-type code, id) hashes to one block (so a lookup reads one block, through
 * the BlockCache) and to HASHES bits in it. About BITS_PER_KEY bits per instance: ~1 % false
 * positives. The filter is derived from its run: when it is missing or a block fails its CRC, the
 * run is read as if there were no filter.
 */
export const BLOOM_BITS_PER_KEY = 10;
const HASHES = 7;
const DATA_BYTES = CACHE_BLOCK_BYTES - 4;
const BLOCK_BITS = DATA_BYTES * 8;

export function bloomFileName(runId: number): string {
  return `instances-${runId}.bloom`;
}

const BLOOM_FILE = /^instances-(0|[1-9][0-9]{0,9})\.bloom$/;

export function parseBloomFileName(name: string): number | undefined {
  const match = BLOOM_FILE.exec(name);
  return match ? Number(match[1]) : undefined;
}

/**
 * Where an instance's bits are in a filter of `blocks` blocks: `spot[0]` is the block, `spot[1…HASHES]`
 * the bit numbers in it. Two 32-bit hashes (murmur3's finalizer over the type code and the id's
 * halves) give them by double hashing. Writes into one shared array, so a lookup allocates nothing;
 * read it before the next call.
 */
const spot = new Uint32Array(1 + HASHES);
const idView = new DataView(new ArrayBuffer(8));

function locate(blocks: number, aggregateTypeCode: number, aggregateId: bigint): Uint32Array {
  // The id's u32 halves without BigInt arithmetic (each operation would allocate a BigInt).
  idView.setBigUint64(0, aggregateId, true);
  const low = idView.getUint32(0, true);
  const high = idView.getUint32(4, true);
  let h1 = Math.imul(low ^ 0x9e37_79b9, 0xcc9e_2d51) ^ Math.imul(high + aggregateTypeCode, 0x1b87_3593);
  h1 ^= h1 >>> 16;
  h1 = Math.imul(h1, 0x85eb_ca6b);
  h1 ^= h1 >>> 13;
  h1 = Math.imul(h1, 0xc2b2_ae35);
  h1 ^= h1 >>> 16;
  let h2 =
    Math.imul(high ^ 0x85eb_ca6b, 0x27d4_eb2f) ^ Math.imul(low + (aggregateTypeCode << 16), 0x1656_67b1);
  h2 ^= h2 >>> 15;
  h2 = Math.imul(h2, 0x2c1b_3c6d);
  h2 ^= h2 >>> 12;
  h2 = Math.imul(h2, 0x297a_2d39);
  h2 ^= h2 >>> 15;
  const first = h1 >>> 0;
  const step = (h2 | 1) >>> 0;
  spot[0] = first % blocks;
  for (let i = 0; i < HASHES; i++) spot[1 + i] = (((first >>> 7) + Math.imul(i, step)) >>> 0) % BLOCK_BITS;
  return spot;
}

/** Blocks of a filter for `keys` instances (at least one). */
function blockCount(keys: number): number {
  return Math.max(1, Math.ceil((keys * BLOOM_BITS_PER_KEY) / BLOCK_BITS));
}

/** The filter of a run being written: instances added one by one, then written whole. */
export class BloomBuilder {
  readonly #blocks: number;
  readonly #bytes: Uint8Array;

  /** `count`: how many instances will be added at most (it sizes the filter). */
  constructor(count: number) {
    this.#blocks = blockCount(count);
    this.#bytes = new Uint8Array(this.#blocks * CACHE_BLOCK_BYTES);
  }

  add(aggregateTypeCode: number, aggregateId: bigint): void {
    const bytes = this.#bytes;
    const at = locate(this.#blocks, aggregateTypeCode, aggregateId);
    const base = at[0]! * CACHE_BLOCK_BYTES;
    for (let i = 1; i <= HASHES; i++) {
      const bit = at[i]!;
      bytes[base + (bit >>> 3)]! |= 1 << (bit & 7);
    }
  }

  /** Seals every block with its CRC, writes the filter to `path` (replacing any file) and fdatasyncs it. */
  write(io: FileIO, path: string): void {
    const bytes = this.#bytes;
    const view = new DataView(bytes.buffer);
    for (let b = 0; b < this.#blocks; b++) {
      const start = b * CACHE_BLOCK_BYTES;
      view.setUint32(start + DATA_BYTES, crc32(bytes.subarray(start, start + DATA_BYTES)), true);
    }
    writeWholeFile(io, path, bytes);
  }
}

/**
 * Writes the filter of a run's instances to a new file and fdatasyncs it. `keys` may repeat an
 * instance (one per batch); `count` is how many it yields at most (it sizes the filter).
 */
export function writeBloom(
  io: FileIO,
  path: string,
  keys: Iterable<{ aggregateTypeCode: number; aggregateId: bigint }>,
  count: number,
): void {
  const builder = new BloomBuilder(count);
  for (const key of keys) builder.add(key.aggregateTypeCode, key.aggregateId);
  builder.write(io, path);
}

/** A run's filter, read block by block through the BlockCache. */
export class InstanceBloom {
  readonly #io: FileIO;
  readonly #fd: number;
  readonly #cache: BlockCache;
  readonly #fileKey: number;
  readonly #blocks: number;
  readonly #file: string;
  readonly #check = (block: Uint8Array, blockNo: number): void => {
    const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
    if (
      block.byteLength !== CACHE_BLOCK_BYTES ||
      crc32(block.subarray(0, DATA_BYTES)) !== view.getUint32(DATA_BYTES, true)
    ) {
      const offset = blockNo * CACHE_BLOCK_BYTES;
      throw new RingStoreError(
        'CORRUPT_DATA',
        `${this.#file}: filter block at offset ${offset} fails its CRC`,
        {
          file: this.#file,
          offset,
          reason: 'crc',
        },
      );
    }
  };

  private constructor(io: FileIO, fd: number, cache: BlockCache, blocks: number, file: string) {
    this.#io = io;
    this.#fd = fd;
    this.#cache = cache;
    this.#fileKey = cache.newFileKey();
    this.#blocks = blocks;
    this.#file = file;
  }

  /** The filter at `path`, or undefined when there is none that can be used (missing, or not whole blocks). */
  static open(io: FileIO, path: string, cache: BlockCache, file: string): InstanceBloom | undefined {
    if (!io.exists(path)) return undefined;
    const fd = io.open(path, 'read');
    const size = io.size(fd);
    if (size === 0 || size % CACHE_BLOCK_BYTES !== 0) {
      io.close(fd);
      return undefined;
    }
    return new InstanceBloom(io, fd, cache, size / CACHE_BLOCK_BYTES, file);
  }

  /** False when the run surely has no batch of the instance; true when it may (or the block is damaged). */
  mayContain(aggregateTypeCode: number, aggregateId: bigint): boolean {
    try {
      const at = locate(this.#blocks, aggregateTypeCode, aggregateId);
      const block = this.#cache.block(this.#fileKey, this.#io, this.#fd, at[0]!, this.#check);
      for (let i = 1; i <= HASHES; i++) {
        const bit = at[i]!;
        if ((block[bit >>> 3]! & (1 << (bit & 7))) === 0) return false;
      }
      return true;
    } catch {
      // A damaged filter says nothing: the run is read (verify reports the file).
      return true;
    }
  }

  /** Offset of the first block that fails its CRC (read from disk, outside the cache), or -1. */
  firstDamagedBlock(): number {
    const block = new Uint8Array(CACHE_BLOCK_BYTES);
    for (let b = 0; b < this.#blocks; b++) {
      const got = this.#io.read(this.#fd, block, 0, CACHE_BLOCK_BYTES, b * CACHE_BLOCK_BYTES);
      try {
        this.#check(block.subarray(0, got), b);
      } catch {
        return b * CACHE_BLOCK_BYTES;
      }
    }
    return -1;
  }

  close(): void {
    this.#cache.dropFile(this.#fileKey);
    this.#io.close(this.#fd);
  }
}
