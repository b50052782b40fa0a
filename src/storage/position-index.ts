import { RingStoreError } from '../errors.js';
import { crc32 } from '../model/crc.js';
import { type BlockCache, CACHE_BLOCK_BYTES } from './block-cache.js';
import type { FileIO } from './file-io.js';
import { parentDir, readU53, writeU53 } from './format.js';

/**
 * The `positions` file of a domain: a sparse, append-only map from a log position, generation or
 * time to the offset of an index record, so a read can start near its target instead of at the
 * start of the index. It is derived from the log and rebuilt from it when damaged.
 *
 * The writer adds an entry for a record when it is the domain's first record or its offset is at
 * least POSITION_INTERVAL_BYTES past the last entry's indexOffset. Entry (64 bytes, the fields of
 * that record):
 *
 *   0  u53 firstPosition   8  u53 indexOffset   16 u53 generation   24 u53 timestamp
 *   32 reserved zeros (28 bytes)                60 u32 crc of bytes [0, 60)
 *
 * From entry to entry firstPosition and indexOffset increase strictly, generation and timestamp
 * never decrease. Only the first `entryCount` entries (the checkpoint's count) are trusted: bytes
 * past them may be a tail the writer has not yet checkpointed, and are never read as entries.
 *
 * Lookups binary-search the entries through the BlockCache, 64 entries to a 4096-byte block. A
 * block's trusted entries are checked (CRC, reserved zeros, u53 range, order within the block) when
 * the block is read from disk; damage is a CORRUPT_DATA error naming the file and the entry's offset.
 */
export const POSITION_ENTRY_BYTES = 64;
export const POSITION_INTERVAL_BYTES = 4096;

const ENTRIES_PER_BLOCK = CACHE_BLOCK_BYTES / POSITION_ENTRY_BYTES;
const FIRST_POSITION = 0;
const INDEX_OFFSET = 8;
const GENERATION = 16;
const TIMESTAMP = 24;
const RESERVED = 32;
const CRC = 60;

export interface PositionEntry {
  firstPosition: number;
  indexOffset: number;
  generation: number;
  timestamp: number;
}

/** Why `entry` cannot follow `previous`, or undefined when it can. */
function orderFault(previous: PositionEntry, entry: PositionEntry): string | undefined {
  if (entry.firstPosition <= previous.firstPosition) return 'firstPosition does not increase';
  if (entry.indexOffset <= previous.indexOffset) return 'indexOffset does not increase';
  if (entry.generation < previous.generation) return 'generation decreases';
  if (entry.timestamp < previous.timestamp) return 'timestamp decreases';
  return undefined;
}

function isU53(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

/** Encodes entries that follow one another (throws a RangeError when they do not). */
export function encodePositionEntries(entries: readonly PositionEntry[]): Uint8Array {
  const bytes = new Uint8Array(entries.length * POSITION_ENTRY_BYTES);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    const { firstPosition, indexOffset, generation, timestamp } = entry;
    if (!isU53(firstPosition) || !isU53(indexOffset) || !isU53(generation) || !isU53(timestamp)) {
      throw new RangeError(`position entry ${i}: every field must be a safe integer >= 0`);
    }
    const fault = i > 0 ? orderFault(entries[i - 1]!, entry) : undefined;
    if (fault) throw new RangeError(`position entry ${i}: ${fault}`);
    const at = i * POSITION_ENTRY_BYTES;
    writeU53(view, at + FIRST_POSITION, firstPosition);
    writeU53(view, at + INDEX_OFFSET, indexOffset);
    writeU53(view, at + GENERATION, generation);
    writeU53(view, at + TIMESTAMP, timestamp);
    view.setUint32(at + CRC, crc32(bytes.subarray(at, at + CRC)), true);
  }
  return bytes;
}

/** The entry at `at` of a block whose entries were checked. */
function readEntry(view: DataView, at: number): PositionEntry {
  return {
    firstPosition: readU53(view, at + FIRST_POSITION),
    indexOffset: readU53(view, at + INDEX_OFFSET),
    generation: readU53(view, at + GENERATION),
    timestamp: readU53(view, at + TIMESTAMP),
  };
}

/** The entry at `at`, or the reason ('crc' or 'field') it is not a valid entry. */
function decodeEntry(block: Uint8Array, view: DataView, at: number): PositionEntry | 'crc' | 'field' {
  if (crc32(block.subarray(at, at + CRC)) !== view.getUint32(at + CRC, true)) return 'crc';
  for (let i = at + RESERVED; i < at + CRC; i++) if (block[i] !== 0) return 'field';
  const entry = readEntry(view, at);
  const { firstPosition, indexOffset, generation, timestamp } = entry;
  if (firstPosition < 0 || indexOffset < 0 || generation < 0 || timestamp < 0) return 'field';
  return entry;
}

function corruptPositions(file: string, offset: number, reason: string, what: string): RingStoreError {
  return new RingStoreError('CORRUPT_DATA', `${file}: ${what} (offset ${offset})`, { file, offset, reason });
}

export class PositionIndex {
  readonly entryCount: number;
  readonly #io: FileIO;
  readonly #cache: BlockCache;
  readonly #file: string;
  readonly #fileKey: number;
  /** undefined when there is nothing to read (no entries) or once closed. */
  #fd: number | undefined;
  readonly #checkBlock = (block: Uint8Array, blockNo: number): void => this.#check(block, blockNo);

  private constructor(
    io: FileIO,
    fd: number | undefined,
    cache: BlockCache,
    entryCount: number,
    file: string,
  ) {
    this.#io = io;
    this.#fd = fd;
    this.#cache = cache;
    this.#fileKey = cache.newFileKey();
    this.entryCount = entryCount;
    this.#file = file;
  }

  /**
   * Opens `positions` trusting its first `entryCount` entries (the checkpoint's count); entries are
   * CRC-checked when read. With no entries the file is not opened (it need not exist); with some, a
   * missing file or one too short to hold them is CORRUPT_DATA. `file` names it in messages.
   */
  static open(io: FileIO, path: string, cache: BlockCache, entryCount: number, file: string): PositionIndex {
    if (!isU53(entryCount)) throw new RangeError(`${file}: entry count must be a safe integer >= 0`);
    if (entryCount === 0) return new PositionIndex(io, undefined, cache, 0, file);
    if (!io.exists(path)) {
      throw corruptPositions(file, 0, 'missing', `the file is missing but should hold ${entryCount} entries`);
    }
    const fd = io.open(path, 'read');
    try {
      const size = io.size(fd);
      if (size < entryCount * POSITION_ENTRY_BYTES) {
        throw corruptPositions(
          file,
          size,
          'short',
          `the file ends before the ${entryCount} entries it should hold`,
        );
      }
    } catch (err) {
      io.close(fd);
      throw err;
    }
    return new PositionIndex(io, fd, cache, entryCount, file);
  }

  /** The last entry with firstPosition <= position (undefined when none / before the first). */
  atPosition(position: number): PositionEntry | undefined {
    return this.#lastAccepted(FIRST_POSITION, (value) => value <= position);
  }

  /** The last entry with timestamp < time (scan from there to find the first batch with timestamp >= time). */
  beforeTime(time: number): PositionEntry | undefined {
    return this.#lastAccepted(TIMESTAMP, (value) => value < time);
  }

  /** Entry i (0-based); CORRUPT_DATA if its CRC fails, RangeError past the trusted entries. */
  entry(i: number): PositionEntry {
    if (!Number.isSafeInteger(i) || i < 0 || i >= this.entryCount) {
      throw new RangeError(`${this.#file}: no entry ${i} (entries: ${this.entryCount})`);
    }
    const view = this.#blockView(Math.floor(i / ENTRIES_PER_BLOCK));
    return readEntry(view, (i % ENTRIES_PER_BLOCK) * POSITION_ENTRY_BYTES);
  }

  /** Closes the file and drops its blocks from the cache; later lookups that need a block throw. */
  close(): void {
    if (this.#fd === undefined) return;
    this.#cache.dropFile(this.#fileKey);
    const fd = this.#fd;
    this.#fd = undefined;
    this.#io.close(fd);
  }

  /**
   * The last entry whose u53 at `field` `accepts` (undefined when none), for predicates that accept
   * a prefix of the entries: the last block whose first entry is accepted, then the last entry in it.
   */
  #lastAccepted(field: number, accepts: (value: number) => boolean): PositionEntry | undefined {
    let low = 0;
    let high = Math.ceil(this.entryCount / ENTRIES_PER_BLOCK) - 1;
    let blockNo = -1;
    let view: DataView | undefined;
    while (low <= high) {
      const middle = Math.floor((low + high) / 2);
      const probed = this.#blockView(middle);
      if (accepts(readU53(probed, field))) {
        blockNo = middle;
        view = probed;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    if (view === undefined) return undefined;
    let found = 0;
    low = 1;
    high = Math.min(ENTRIES_PER_BLOCK, this.entryCount - blockNo * ENTRIES_PER_BLOCK) - 1;
    while (low <= high) {
      const middle = Math.floor((low + high) / 2);
      if (accepts(readU53(view, middle * POSITION_ENTRY_BYTES + field))) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return readEntry(view, found * POSITION_ENTRY_BYTES);
  }

  #blockView(blockNo: number): DataView {
    if (this.#fd === undefined) throw new Error(`${this.#file}: the position index is closed`);
    const block = this.#cache.block(this.#fileKey, this.#io, this.#fd, blockNo, this.#checkBlock);
    return new DataView(block.buffer, block.byteOffset, block.byteLength);
  }

  /** Checks the trusted entries of a block read from disk; throws CORRUPT_DATA at the first damage. */
  #check(block: Uint8Array, blockNo: number): void {
    const first = blockNo * ENTRIES_PER_BLOCK;
    const count = Math.min(ENTRIES_PER_BLOCK, this.entryCount - first);
    const blockOffset = blockNo * CACHE_BLOCK_BYTES;
    if (block.byteLength < count * POSITION_ENTRY_BYTES) {
      const offset = blockOffset + block.byteLength;
      throw corruptPositions(
        this.#file,
        offset,
        'short',
        `the file ends inside entry ${first + Math.floor(block.byteLength / POSITION_ENTRY_BYTES)}`,
      );
    }
    const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
    let previous: PositionEntry | undefined;
    for (let i = 0; i < count; i++) {
      const at = i * POSITION_ENTRY_BYTES;
      const offset = blockOffset + at;
      const entry = decodeEntry(block, view, at);
      if (entry === 'crc')
        throw corruptPositions(this.#file, offset, 'crc', `position entry ${first + i} fails its CRC`);
      if (entry === 'field') {
        throw corruptPositions(
          this.#file,
          offset,
          'field',
          `position entry ${first + i} has a field out of range`,
        );
      }
      const fault = previous ? orderFault(previous, entry) : undefined;
      if (fault) throw corruptPositions(this.#file, offset, 'order', `position entry ${first + i}: ${fault}`);
      previous = entry;
    }
  }
}

/**
 * Writes encoded entries at entry index `from` (offset from * 64) and fdatasyncs (writer side).
 * `entries` must follow entry `from - 1`. Bytes past the new last entry (a tail a crash left
 * behind) are cut; appending past the end of the file (a gap) is a RangeError. When the call
 * creates the file, the folder is synced too.
 */
export function appendPositionEntries(
  io: FileIO,
  path: string,
  from: number,
  entries: readonly PositionEntry[],
): void {
  if (!isU53(from)) throw new RangeError(`${path}: entry index must be a safe integer >= 0`);
  const bytes = encodePositionEntries(entries);
  const created = !io.exists(path);
  const fd = io.open(path, 'create');
  try {
    const start = from * POSITION_ENTRY_BYTES;
    const end = start + bytes.byteLength;
    const size = io.size(fd);
    if (start > size) {
      throw new RangeError(
        `${path}: cannot append at entry ${from}, the file holds ${Math.floor(size / POSITION_ENTRY_BYTES)}`,
      );
    }
    if (bytes.byteLength > 0) io.write(fd, bytes, start);
    if (size > end) io.truncate(fd, end);
    io.fdatasync(fd);
  } finally {
    io.close(fd);
  }
  if (created) io.fsyncDir(parentDir(path));
}
