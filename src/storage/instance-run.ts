import { RingStoreError } from '../errors.js';
import { crc32 } from '../model/crc.js';
import { type BlockCache, CACHE_BLOCK_BYTES } from './block-cache.js';
import type { FileIO } from './file-io.js';
import { readU53, writeU53 } from './format.js';

/**
 * An instance run, `<dir>/<domain>/instances.<runId>`: an immutable sorted file that maps each
 * instance to its batches (where their index records are), derived from the index file and
 * rebuildable from it. Runs are written once (writeRun, or mergeRuns in run-merge.ts) and read
 * through the shared BlockCache.
 *
 * File = blocks of 4096 bytes. Block 0 is the header:
 *
 *   0  magic 52 53 58 02 ("RSX" 2)   4  u32 runId
 *   8  u53 entryCount                16 u32 blockCount (data blocks, after the header)   20 u32 reserved (0)
 *   24 u53 indexFrom                 32 u53 indexTo (the run holds the batches of index bytes [indexFrom, indexTo))
 *   40 u32 crc of bytes [0, 40), then zeros to 4096
 *
 * Data blocks 1…blockCount, all full (102 entries) but the last:
 *
 *   0  u32 count (1…102)   4  u32 reserved (0)   8  count × entry (40 bytes)   zeros to 4092
 *   4092 u32 crc of bytes [0, 4092)
 *
 * Entry, sorted by (aggregateTypeCode, aggregateId, firstVersion), strictly increasing over the file:
 *
 *   0  u64 aggregateId       8  u16 aggregateTypeCode   10 u8 flags (bit 0: the batch has an idempotency key)
 *   11 u8  reserved (0)      12 u32 eventCount          16 u53 firstVersion
 *   24 u53 generation        32 u53 indexOffset (of the batch's record in the domain's index file)
 *
 * Any disagreement (magic, CRC, sizes, counts, reserved bits, order) is CORRUPT_DATA naming the
 * file, the offset and the reason; the caller rebuilds the run from the log. Lookups check every
 * block they read (CRC, layout, order within the block); the order across blocks is checked by the
 * full scan (entries), which merges and verify use.
 */
export const RUN_ENTRY_BYTES = 40;
export const RUN_ENTRIES_PER_BLOCK = 102;

export interface RunEntry {
  aggregateTypeCode: number;
  aggregateId: bigint;
  firstVersion: number;
  eventCount: number;
  generation: number;
  indexOffset: number;
  hasKey: boolean;
}

export interface RunMeta {
  runId: number;
  indexFrom: number;
  indexTo: number;
}

const BLOCK_BYTES = CACHE_BLOCK_BYTES;
/** "RSX" and version 2, read as a little-endian u32. */
const RUN_MAGIC = 0x02_58_53_52;
const HEADER_CRC_AT = 40;
const HEADER_BYTES_USED = 44;
const ENTRIES_AT = 8;
const BLOCK_CRC_AT = BLOCK_BYTES - 4;
const HAS_KEY_FLAG = 1;
/** Blocks per write call of writeRun and per read call of entries(). */
const WRITE_BLOCKS = 16;
const SCAN_BLOCKS = 64;
const TWO_32 = 0x1_0000_0000;
const MAX_U32 = 0xffff_ffff;
const MAX_U64 = (1n << 64n) - 1n;

const RUN_FILE = /^instances-(0|[1-9][0-9]{0,9})\.run$/;

export function runFileName(runId: number): string {
  if (!isU32(runId)) throw new RangeError(`a run id is a u32, got ${runId}`);
  return `instances-${runId}.run`;
}

export function parseRunFileName(name: string): number | undefined {
  const match = RUN_FILE.exec(name);
  if (!match) return undefined;
  const runId = Number(match[1]);
  return runId <= MAX_U32 ? runId : undefined;
}

export function compareRunEntries(a: RunEntry, b: RunEntry): number {
  if (a.aggregateTypeCode !== b.aggregateTypeCode) return a.aggregateTypeCode - b.aggregateTypeCode;
  if (a.aggregateId !== b.aggregateId) return a.aggregateId < b.aggregateId ? -1 : 1;
  return a.firstVersion - b.firstVersion;
}

/**
 * Writes a run from entries already sorted (throws RangeError if not strictly increasing or a field
 * does not fit its layout) to `path`, created new (an existing file is refused), streaming 16 blocks
 * at a time (bounded memory for any entry count), header last, then fdatasync. The directory entry
 * is not synced: the checkpoint that lists the run does that (writeCheckpoint's fsyncDir). On any
 * failure the partial file is removed. Returns the entry count.
 */
export function writeRun(io: FileIO, path: string, entries: Iterable<RunEntry>, meta: RunMeta): number {
  const job = new RunWriteJob(io, path, entries, meta);
  job.step(Number.POSITIVE_INFINITY);
  return job.entryCount;
}

/** Entries a RunWriteJob encodes between two chances to stop. */
const STEP_ENTRIES = 1024;

/**
 * writeRun in steps: each `step(n)` writes about `n` more entries (whole steps of 1,024), so that
 * a long write — a merge of large runs — can be spread over many calls of its caller. The file is
 * a partial run (no header) until the step that finishes it; `abort` removes it.
 */
export class RunWriteJob {
  readonly #io: FileIO;
  readonly #path: string;
  readonly #meta: RunMeta;
  readonly #fd: number;
  readonly #steps: Generator<number, number>;
  #entryCount = 0;
  #done = false;

  constructor(io: FileIO, path: string, entries: Iterable<RunEntry>, meta: RunMeta) {
    checkRunMeta(meta);
    if (io.exists(path)) throw new Error(`${path} exists: a run is only ever written to a new file`);
    this.#io = io;
    this.#path = path;
    this.#meta = meta;
    this.#fd = io.open(path, 'create');
    this.#steps = writeDataBlocks(io, this.#fd, entries, STEP_ENTRIES);
  }

  get done(): boolean {
    return this.#done;
  }

  /** Entries written so far (all of them once done). */
  get entryCount(): number {
    return this.#entryCount;
  }

  /** Writes about `entries` more entries; returns true once the run is complete and synced. */
  step(entries: number): boolean {
    if (this.#done) return true;
    try {
      for (let written = 0; written < entries; written += STEP_ENTRIES) {
        const next = this.#steps.next();
        this.#entryCount = next.value;
        if (!next.done) continue;
        this.#io.write(this.#fd, encodeRunHeader(this.#meta, this.#entryCount), 0);
        this.#io.fdatasync(this.#fd);
        this.#io.close(this.#fd);
        this.#done = true;
        return true;
      }
    } catch (err) {
      this.#done = true;
      discardPartialRun(this.#io, this.#fd, this.#path);
      throw err;
    }
    return false;
  }

  /** Stops an unfinished write and removes its file. */
  abort(): void {
    if (this.#done) return;
    this.#done = true;
    this.#steps.return(this.#entryCount);
    discardPartialRun(this.#io, this.#fd, this.#path);
  }
}

/** Closes and removes a run file whose writing failed; the write's own failure is the one reported. */
function discardPartialRun(io: FileIO, fd: number, path: string): void {
  try {
    io.close(fd);
  } catch {
    // Reported by the caller's error; the descriptor is gone either way.
  }
  try {
    io.unlink(path);
  } catch {
    // A leftover file is listed by no checkpoint, and writeRun refuses its path rather than reuse it.
  }
}

/** An open run: point lookups through the BlockCache, and a sequential scan for merges and verify. */
export class InstanceRun {
  readonly meta: RunMeta;
  readonly entryCount: number;
  readonly #io: FileIO;
  readonly #fd: number;
  readonly #cache: BlockCache;
  readonly #fileKey: number;
  readonly #file: string;
  readonly #blockCount: number;
  /**
   * The search key of each data block's first entry, filled as blocks are read (NaN: not yet):
   * major = aggregateTypeCode × 2^32 + high word of aggregateId, minor = its low word. The binary
   * search over blocks compares these without going through the cache.
   */
  readonly #firstMajor: Float64Array;
  readonly #firstMinor: Float64Array;
  #closed = false;

  private constructor(
    io: FileIO,
    fd: number,
    cache: BlockCache,
    file: string,
    meta: RunMeta,
    entryCount: number,
    blockCount: number,
  ) {
    this.#io = io;
    this.#fd = fd;
    this.#cache = cache;
    this.#fileKey = cache.newFileKey();
    this.#file = file;
    this.meta = meta;
    this.entryCount = entryCount;
    this.#blockCount = blockCount;
    this.#firstMajor = new Float64Array(blockCount).fill(Number.NaN);
    this.#firstMinor = new Float64Array(blockCount);
  }

  /**
   * Opens `path` and checks the header (magic, CRC, reserved bytes, counts, and sizes agreeing with
   * the file's size); CORRUPT_DATA otherwise, also when the file is missing. `file` names the run in
   * messages, e.g. 'orders/instances-7.run'. Data blocks are checked when read.
   */
  static open(io: FileIO, path: string, cache: BlockCache, file: string): InstanceRun {
    if (!io.exists(path)) throw damaged(file, 0, 'the run file is missing');
    const fd = io.open(path, 'read');
    try {
      const header = new Uint8Array(BLOCK_BYTES);
      const got = io.read(fd, header, 0, BLOCK_BYTES, 0);
      const { meta, entryCount, blockCount } = decodeRunHeader(header.subarray(0, got), file);
      const named = parseRunFileName(path.slice(path.lastIndexOf('/') + 1));
      if (named !== undefined && named !== meta.runId) {
        throw damaged(file, 4, `the header names run ${meta.runId}, the file name run ${named}`);
      }
      const size = io.size(fd);
      const expected = (blockCount + 1) * BLOCK_BYTES;
      if (size !== expected) {
        throw damaged(
          file,
          Math.min(size, expected),
          `the file has ${size} bytes, its header says ${expected}`,
        );
      }
      return new InstanceRun(io, fd, cache, file, meta, entryCount, blockCount);
    } catch (err) {
      io.close(fd);
      throw err;
    }
  }

  /**
   * The entries of one instance in firstVersion order: a binary search over the blocks' first keys,
   * then within the block, then a walk over the following blocks while the instance goes on. Every
   * block read is CRC-checked. Costs one cached block per 102 entries returned, plus the search.
   */
  entriesOf(aggregateTypeCode: number, aggregateId: bigint): RunEntry[] {
    this.#assertOpen();
    const found: RunEntry[] = [];
    if (!isSearchable(aggregateTypeCode, aggregateId) || this.#blockCount === 0) return found;
    const major = aggregateTypeCode * TWO_32 + Number(aggregateId >> 32n);
    const minor = Number(aggregateId & 0xffff_ffffn);
    let blockIndex = Math.max(0, this.#lastBlockStartingBelow(major, minor, false));
    let view = this.#dataBlock(blockIndex);
    let count = view.getUint32(0, true);
    let i = firstEntryFrom(view, count, major, minor, false);
    for (;;) {
      if (i === count) {
        if (++blockIndex === this.#blockCount) break;
        view = this.#dataBlock(blockIndex);
        count = view.getUint32(0, true);
        i = 0;
      }
      const at = ENTRIES_AT + i * RUN_ENTRY_BYTES;
      if (compareEntryKey(view, at, major, minor) !== 0) break;
      found.push(decodeRunEntry(view, at, aggregateId));
      i++;
    }
    return found;
  }

  /** The instance's entry with the largest firstVersion, or undefined: one block past the search. */
  lastOf(aggregateTypeCode: number, aggregateId: bigint): RunEntry | undefined {
    this.#assertOpen();
    if (!isSearchable(aggregateTypeCode, aggregateId)) return undefined;
    const major = aggregateTypeCode * TWO_32 + Number(aggregateId >> 32n);
    const minor = Number(aggregateId & 0xffff_ffffn);
    const blockIndex = this.#lastBlockStartingBelow(major, minor, true);
    if (blockIndex < 0) return undefined;
    // The next block starts above the instance, so its last entry, if any, is in this block.
    const view = this.#dataBlock(blockIndex);
    const at =
      ENTRIES_AT + (firstEntryFrom(view, view.getUint32(0, true), major, minor, true) - 1) * RUN_ENTRY_BYTES;
    return compareEntryKey(view, at, major, minor) === 0 ? decodeRunEntry(view, at, aggregateId) : undefined;
  }

  /**
   * Every entry in order, read sequentially 64 blocks (256 KiB) at a time outside the cache, each
   * block CRC-checked and the order checked across blocks too (for merges and verify). The run must
   * stay open until the iteration ends.
   */
  entries(): Iterable<RunEntry> {
    this.#assertOpen();
    return this.#scan();
  }

  /** Closes the file and drops its blocks from the cache; later calls throw STORE_CLOSED. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#cache.dropFile(this.#fileKey);
    this.#io.close(this.#fd);
  }

  *#scan(): Generator<RunEntry> {
    const chunk = new Uint8Array(Math.min(this.#blockCount, SCAN_BLOCKS) * BLOCK_BYTES);
    let previousMajor = -1;
    let previousMinor = 0;
    let previousVersion = 0;
    for (let first = 0; first < this.#blockCount; first += SCAN_BLOCKS) {
      this.#assertOpen();
      const blocks = Math.min(SCAN_BLOCKS, this.#blockCount - first);
      const got = this.#io.read(this.#fd, chunk, 0, blocks * BLOCK_BYTES, (first + 1) * BLOCK_BYTES);
      for (let b = 0; b < blocks; b++) {
        const start = b * BLOCK_BYTES;
        const blockNo = first + b + 1;
        this.#checkDataBlock(
          chunk.subarray(start, Math.max(start, Math.min(got, start + BLOCK_BYTES))),
          blockNo,
        );
        const view = new DataView(chunk.buffer, start, BLOCK_BYTES);
        const major = entryKeyMajor(view, ENTRIES_AT);
        const minor = view.getUint32(ENTRIES_AT, true);
        const version = readU53(view, ENTRIES_AT + 16);
        if (compareKeys(major, minor, version, previousMajor, previousMinor, previousVersion) <= 0) {
          throw damaged(this.#file, blockNo * BLOCK_BYTES + ENTRIES_AT, 'entries out of order across blocks');
        }
        const count = view.getUint32(0, true);
        for (let i = 0; i < count; i++) {
          const at = ENTRIES_AT + i * RUN_ENTRY_BYTES;
          yield decodeRunEntry(view, at, view.getBigUint64(at, true));
        }
        const last = ENTRIES_AT + (count - 1) * RUN_ENTRY_BYTES;
        previousMajor = entryKeyMajor(view, last);
        previousMinor = view.getUint32(last, true);
        previousVersion = readU53(view, last + 16);
      }
    }
  }

  /** Data block `blockIndex` (0-based, file block blockIndex + 1) through the cache, checked. */
  #dataBlock(blockIndex: number): DataView {
    const bytes = this.#cache.block(this.#fileKey, this.#io, this.#fd, blockIndex + 1, this.#checkDataBlock);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (Number.isNaN(this.#firstMajor[blockIndex]!)) {
      this.#firstMajor[blockIndex] = entryKeyMajor(view, ENTRIES_AT);
      this.#firstMinor[blockIndex] = view.getUint32(ENTRIES_AT, true);
    }
    return view;
  }

  /** The last data block whose first entry's key is below the target (at or below it when `orEqual`), or -1. */
  #lastBlockStartingBelow(major: number, minor: number, orEqual: boolean): number {
    let low = 0;
    let high = this.#blockCount - 1;
    let found = -1;
    while (low <= high) {
      const mid = low + ((high - low) >>> 1);
      if (Number.isNaN(this.#firstMajor[mid]!)) this.#dataBlock(mid);
      const firstMajor = this.#firstMajor[mid]!;
      const order = firstMajor !== major ? firstMajor - major : this.#firstMinor[mid]! - minor;
      if (order < 0 || (orEqual && order === 0)) {
        found = mid;
        low = mid + 1;
      } else {
        high = mid - 1;
      }
    }
    return found;
  }

  /** Refuses a data block that disagrees with the header or the layout (runs once per read from disk). */
  readonly #checkDataBlock = (block: Uint8Array, blockNo: number): void => {
    const offset = blockNo * BLOCK_BYTES;
    if (block.byteLength !== BLOCK_BYTES) {
      throw damaged(this.#file, offset + block.byteLength, 'the file ends inside a data block');
    }
    const view = new DataView(block.buffer, block.byteOffset, BLOCK_BYTES);
    if (crc32(block.subarray(0, BLOCK_CRC_AT)) !== view.getUint32(BLOCK_CRC_AT, true)) {
      throw damaged(this.#file, offset, 'data block crc');
    }
    const expected =
      blockNo < this.#blockCount
        ? RUN_ENTRIES_PER_BLOCK
        : this.entryCount - (this.#blockCount - 1) * RUN_ENTRIES_PER_BLOCK;
    const count = view.getUint32(0, true);
    if (count !== expected) {
      throw damaged(this.#file, offset, `data block holds ${count} entries, the header implies ${expected}`);
    }
    const fault = firstFaultInBlock(block, view, count);
    if (fault >= 0) throw damaged(this.#file, offset + fault, 'data block layout or entry order');
  };

  #assertOpen(): void {
    if (this.#closed) throw new RingStoreError('STORE_CLOSED', `${this.#file} is closed`);
  }
}

function damaged(file: string, offset: number, reason: string): RingStoreError {
  return new RingStoreError('CORRUPT_DATA', `${file}: ${reason} (offset ${offset})`, {
    file,
    offset,
    reason,
  });
}

function isU32(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= MAX_U32;
}

function isU53(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

function isSearchable(aggregateTypeCode: number, aggregateId: bigint): boolean {
  return (
    Number.isInteger(aggregateTypeCode) &&
    aggregateTypeCode >= 0 &&
    aggregateTypeCode <= 0xffff &&
    aggregateId >= 0n &&
    aggregateId <= MAX_U64
  );
}

function checkRunMeta(meta: RunMeta): void {
  if (!isU32(meta.runId) || !isU53(meta.indexFrom) || !isU53(meta.indexTo) || meta.indexFrom > meta.indexTo) {
    throw new RangeError(
      `run meta out of range: runId ${meta.runId}, index range [${meta.indexFrom}, ${meta.indexTo})`,
    );
  }
}

function checkRunEntry(entry: RunEntry, index: number): void {
  const { aggregateTypeCode, aggregateId } = entry;
  if (
    !Number.isInteger(aggregateTypeCode) ||
    aggregateTypeCode < 0 ||
    aggregateTypeCode > 0xffff ||
    typeof aggregateId !== 'bigint' ||
    aggregateId < 0n ||
    aggregateId > MAX_U64 ||
    !isU32(entry.eventCount) ||
    !isU53(entry.firstVersion) ||
    !isU53(entry.generation) ||
    !isU53(entry.indexOffset)
  ) {
    throw new RangeError(`run entry ${index} has a field out of range: ${describeEntry(entry)}`);
  }
}

function describeEntry(entry: RunEntry): string {
  return `type ${entry.aggregateTypeCode}, id ${String(entry.aggregateId)}, version ${entry.firstVersion}`;
}

/**
 * Writes the data blocks from block 1 on, yielding the entry count every `stepEntries` entries;
 * returns the count.
 */
function* writeDataBlocks(
  io: FileIO,
  fd: number,
  entries: Iterable<RunEntry>,
  stepEntries: number,
): Generator<number, number> {
  const buffer = new Uint8Array(WRITE_BLOCKS * BLOCK_BYTES);
  const view = new DataView(buffer.buffer);
  let position = BLOCK_BYTES;
  let fullBlocks = 0;
  let inBlock = 0;
  let count = 0;
  let previousType = -1;
  let previousId = 0n;
  let previousVersion = 0;
  for (const entry of entries) {
    checkRunEntry(entry, count);
    const { aggregateTypeCode, aggregateId, firstVersion } = entry;
    if (
      aggregateTypeCode < previousType ||
      (aggregateTypeCode === previousType &&
        (aggregateId < previousId || (aggregateId === previousId && firstVersion <= previousVersion)))
    ) {
      throw new RangeError(`run entry ${count} (${describeEntry(entry)}) is not above the one before it`);
    }
    previousType = aggregateTypeCode;
    previousId = aggregateId;
    previousVersion = firstVersion;
    encodeRunEntry(view, fullBlocks * BLOCK_BYTES + ENTRIES_AT + inBlock * RUN_ENTRY_BYTES, entry);
    count++;
    if (count % stepEntries === 0) yield count;
    if (++inBlock < RUN_ENTRIES_PER_BLOCK) continue;
    sealDataBlock(buffer, view, fullBlocks * BLOCK_BYTES, inBlock);
    inBlock = 0;
    if (++fullBlocks < WRITE_BLOCKS) continue;
    io.write(fd, buffer, position);
    position += buffer.byteLength;
    fullBlocks = 0;
  }
  if (inBlock > 0) sealDataBlock(buffer, view, fullBlocks++ * BLOCK_BYTES, inBlock);
  if (fullBlocks > 0) io.write(fd, buffer.subarray(0, fullBlocks * BLOCK_BYTES), position);
  return count;
}

function encodeRunEntry(view: DataView, at: number, entry: RunEntry): void {
  view.setBigUint64(at, entry.aggregateId, true);
  view.setUint16(at + 8, entry.aggregateTypeCode, true);
  view.setUint8(at + 10, entry.hasKey ? HAS_KEY_FLAG : 0);
  view.setUint8(at + 11, 0);
  view.setUint32(at + 12, entry.eventCount, true);
  writeU53(view, at + 16, entry.firstVersion);
  writeU53(view, at + 24, entry.generation);
  writeU53(view, at + 32, entry.indexOffset);
}

/** Completes the block at `start` of `buffer` holding `count` encoded entries: count, padding, CRC. */
function sealDataBlock(buffer: Uint8Array, view: DataView, start: number, count: number): void {
  view.setUint32(start, count, true);
  view.setUint32(start + 4, 0, true);
  buffer.fill(0, start + ENTRIES_AT + count * RUN_ENTRY_BYTES, start + BLOCK_CRC_AT);
  view.setUint32(start + BLOCK_CRC_AT, crc32(buffer.subarray(start, start + BLOCK_CRC_AT)), true);
}

function encodeRunHeader(meta: RunMeta, entryCount: number): Uint8Array {
  const header = new Uint8Array(BLOCK_BYTES);
  const view = new DataView(header.buffer);
  view.setUint32(0, RUN_MAGIC, true);
  view.setUint32(4, meta.runId, true);
  writeU53(view, 8, entryCount);
  view.setUint32(16, Math.ceil(entryCount / RUN_ENTRIES_PER_BLOCK), true);
  writeU53(view, 24, meta.indexFrom);
  writeU53(view, 32, meta.indexTo);
  view.setUint32(HEADER_CRC_AT, crc32(header.subarray(0, HEADER_CRC_AT)), true);
  return header;
}

function decodeRunHeader(
  header: Uint8Array,
  file: string,
): { meta: RunMeta; entryCount: number; blockCount: number } {
  if (header.byteLength < BLOCK_BYTES)
    throw damaged(file, header.byteLength, 'the file ends inside the header');
  const view = new DataView(header.buffer, header.byteOffset, BLOCK_BYTES);
  if (view.getUint32(0, true) !== RUN_MAGIC) throw damaged(file, 0, 'not a run header (magic)');
  if (crc32(header.subarray(0, HEADER_CRC_AT)) !== view.getUint32(HEADER_CRC_AT, true)) {
    throw damaged(file, 0, 'header crc');
  }
  const entryCount = readU53(view, 8);
  const blockCount = view.getUint32(16, true);
  if (entryCount < 0 || blockCount !== Math.ceil(entryCount / RUN_ENTRIES_PER_BLOCK)) {
    throw damaged(file, 8, `header entry count ${entryCount} disagrees with block count ${blockCount}`);
  }
  const indexFrom = readU53(view, 24);
  const indexTo = readU53(view, 32);
  if (indexFrom < 0 || indexTo < indexFrom) throw damaged(file, 24, 'header index range');
  if (view.getUint32(20, true) !== 0) throw damaged(file, 20, 'header reserved bytes');
  for (let at = HEADER_BYTES_USED; at < BLOCK_BYTES; at++) {
    if (header[at] !== 0) throw damaged(file, at, 'header padding is not zero');
  }
  return { meta: { runId: view.getUint32(4, true), indexFrom, indexTo }, entryCount, blockCount };
}

/**
 * The offset in the block of the first byte that breaks the layout (flags, reserved bytes, u53
 * fields, zero padding) or the strict order of the entries, or -1 when the block is sound.
 */
function firstFaultInBlock(block: Uint8Array, view: DataView, count: number): number {
  if (view.getUint32(4, true) !== 0) return 4;
  let previousMajor = -1;
  let previousMinor = 0;
  let previousVersion = 0;
  for (let i = 0; i < count; i++) {
    const at = ENTRIES_AT + i * RUN_ENTRY_BYTES;
    if ((block[at + 10]! & ~HAS_KEY_FLAG) !== 0 || block[at + 11] !== 0) return at + 10;
    const version = readU53(view, at + 16);
    if (version < 0 || readU53(view, at + 24) < 0 || readU53(view, at + 32) < 0) return at + 16;
    const major = entryKeyMajor(view, at);
    const minor = view.getUint32(at, true);
    if (compareKeys(major, minor, version, previousMajor, previousMinor, previousVersion) <= 0) return at;
    previousMajor = major;
    previousMinor = minor;
    previousVersion = version;
  }
  for (let at = ENTRIES_AT + count * RUN_ENTRY_BYTES; at < BLOCK_CRC_AT; at++) {
    if (block[at] !== 0) return at;
  }
  return -1;
}

/** aggregateTypeCode × 2^32 + the high word of aggregateId: with the low word, the instance's key. */
function entryKeyMajor(view: DataView, at: number): number {
  return view.getUint16(at + 8, true) * TWO_32 + view.getUint32(at + 4, true);
}

function compareEntryKey(view: DataView, at: number, major: number, minor: number): number {
  const entryMajor = entryKeyMajor(view, at);
  return entryMajor !== major ? entryMajor - major : view.getUint32(at, true) - minor;
}

function compareKeys(
  aMajor: number,
  aMinor: number,
  aVersion: number,
  bMajor: number,
  bMinor: number,
  bVersion: number,
): number {
  if (aMajor !== bMajor) return aMajor - bMajor;
  return aMinor !== bMinor ? aMinor - bMinor : aVersion - bVersion;
}

/** Index of the block's first entry whose instance key is at or above the target (above it when `skipEqual`). */
function firstEntryFrom(
  view: DataView,
  count: number,
  major: number,
  minor: number,
  skipEqual: boolean,
): number {
  let low = 0;
  let high = count;
  while (low < high) {
    const mid = (low + high) >>> 1;
    const order = compareEntryKey(view, ENTRIES_AT + mid * RUN_ENTRY_BYTES, major, minor);
    if (order < 0 || (skipEqual && order === 0)) low = mid + 1;
    else high = mid;
  }
  return low;
}

function decodeRunEntry(view: DataView, at: number, aggregateId: bigint): RunEntry {
  return {
    aggregateTypeCode: view.getUint16(at + 8, true),
    aggregateId,
    firstVersion: readU53(view, at + 16),
    eventCount: view.getUint32(at + 12, true),
    generation: readU53(view, at + 24),
    indexOffset: readU53(view, at + 32),
    hasKey: (view.getUint8(at + 10) & HAS_KEY_FLAG) !== 0,
  };
}
