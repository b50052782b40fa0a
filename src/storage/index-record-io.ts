import { RingStoreError } from '../errors.js';
import { type BlockCache, CACHE_BLOCK_BYTES } from './block-cache.js';
import type { FileIO } from './file-io.js';
import { decodeIndexRecord, emptyIndexRecord, INDEX_FIXED_BYTES, type IndexRecord } from './index-record.js';

/** A decoded index record with the bytes it was decoded from (its event headers are read from them). */
export interface LoadedRecord {
  record: IndexRecord;
  bytes: Uint8Array;
  view: DataView;
}

/** Index records are read from disk only below a checkpoint: there a bad record is damage. */
function damaged(file: string, offset: number, reason: string): RingStoreError {
  return new RingStoreError(
    'CORRUPT_DATA',
    `${file}: no valid index record at offset ${offset} (${reason})`,
    {
      file,
      offset,
      reason,
    },
  );
}

/** Reads and decodes the record at `offset` of an index file (two reads: its length, then the rest). */
export function readIndexRecordAt(io: FileIO, fd: number, offset: number, file: string): IndexRecord {
  const head = new Uint8Array(4);
  if (io.read(fd, head, 0, 4, offset) !== 4) throw damaged(file, offset, 'short');
  const length = new DataView(head.buffer).getUint32(0, true);
  if (length < INDEX_FIXED_BYTES || length > 16 * 1024 * 1024) throw damaged(file, offset, 'length');
  const bytes = new Uint8Array(length);
  if (io.read(fd, bytes, 0, length, offset) !== length) throw damaged(file, offset, 'short');
  const record = emptyIndexRecord();
  const fault = decodeIndexRecord(bytes, new DataView(bytes.buffer), 0, record, offset);
  if (fault !== undefined) throw damaged(file, offset, fault);
  return record;
}

/**
 * Random access to the records of one index file below a checkpoint (bytes that never change),
 * through a BlockCache: a record within one cache block is decoded from the cached block; one that
 * spans blocks is assembled from them. Every record is CRC-checked as it is decoded.
 */
export class IndexRecordSource {
  readonly #io: FileIO;
  readonly fd: number;
  readonly #cache: BlockCache;
  readonly #fileKey: number;
  readonly #file: string;

  constructor(io: FileIO, fd: number, cache: BlockCache, file: string) {
    this.#io = io;
    this.fd = fd;
    this.#cache = cache;
    this.#fileKey = cache.newFileKey();
    this.#file = file;
  }

  recordAt(offset: number): LoadedRecord {
    const blockNo = Math.floor(offset / CACHE_BLOCK_BYTES);
    const within = offset - blockNo * CACHE_BLOCK_BYTES;
    const first = this.#block(blockNo);
    let bytes: Uint8Array;
    let at: number;
    const length =
      first.byteLength >= within + 4
        ? new DataView(first.buffer, first.byteOffset, first.byteLength).getUint32(within, true)
        : -1;
    if (length >= INDEX_FIXED_BYTES && within + length <= first.byteLength) {
      bytes = first;
      at = within;
    } else {
      bytes = this.#assemble(offset, length);
      at = 0;
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const record = emptyIndexRecord();
    const fault = decodeIndexRecord(bytes, view, at, record, offset - at);
    if (fault !== undefined) throw damaged(this.#file, offset, fault);
    return { record, bytes, view };
  }

  close(): void {
    this.#cache.dropFile(this.#fileKey);
    this.#io.close(this.fd);
  }

  #block(blockNo: number): Uint8Array {
    return this.#cache.block(this.#fileKey, this.#io, this.fd, blockNo);
  }

  /** The bytes of a record that spans cache blocks (or whose length field is cut by a block end). */
  #assemble(offset: number, knownLength: number): Uint8Array {
    let length = knownLength;
    if (length < 0) {
      const head = new Uint8Array(4);
      if (this.#io.read(this.fd, head, 0, 4, offset) !== 4) throw damaged(this.#file, offset, 'short');
      length = new DataView(head.buffer).getUint32(0, true);
    }
    if (length < INDEX_FIXED_BYTES || length > 16 * 1024 * 1024) throw damaged(this.#file, offset, 'length');
    const bytes = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      const at = offset + filled;
      const blockNo = Math.floor(at / CACHE_BLOCK_BYTES);
      const block = this.#block(blockNo);
      const from = at - blockNo * CACHE_BLOCK_BYTES;
      const take = Math.min(length - filled, block.byteLength - from);
      if (take <= 0) throw damaged(this.#file, offset, 'short');
      bytes.set(block.subarray(from, from + take), filled);
      filled += take;
    }
    return bytes;
  }
}

/**
 * Sequential reading of index records from `from` up to `to` (a checkpoint's indexEnd), in windows
 * of `windowBytes`, outside the cache (a scan would evict everything else). `visit` returns false
 * to stop. The LoadedRecord passed is reused: copy what outlives the call.
 */
export function scanIndexRange(
  io: FileIO,
  fd: number,
  from: number,
  to: number,
  file: string,
  visit: (loaded: LoadedRecord) => boolean,
  windowBytes = 256 * 1024,
): void {
  // The window starts small (a short read costs little) and doubles up to windowBytes (a long
  // scan costs few calls).
  let nextWindow = Math.min(16 * 1024, windowBytes);
  let window = new Uint8Array(0);
  let windowStart = from;
  let windowEnd = from;
  let view = new DataView(window.buffer);
  const record = emptyIndexRecord();
  const loaded: LoadedRecord = { record, bytes: window, view };
  let offset = from;
  while (offset < to) {
    if (offset + 4 > windowEnd || offset + view.getUint32(offset - windowStart, true) > windowEnd) {
      // Refill the window from this record on, growing it for a record larger than the window.
      let length = 0;
      if (offset + 4 <= windowEnd) length = view.getUint32(offset - windowStart, true);
      if (length > 16 * 1024 * 1024) throw damaged(file, offset, 'length');
      if (length > window.byteLength || nextWindow > window.byteLength) {
        window = new Uint8Array(Math.max(length, Math.min(nextWindow, to - offset)));
        view = new DataView(window.buffer);
        nextWindow = Math.min(nextWindow * 2, windowBytes);
      }
      const want = Math.min(window.byteLength, to - offset);
      const got = io.read(fd, window, 0, want, offset);
      if (got < Math.min(want, 4)) throw damaged(file, offset, 'short');
      windowStart = offset;
      windowEnd = offset + got;
      loaded.bytes = window;
      loaded.view = view;
    }
    const fault = decodeIndexRecord(window, view, offset - windowStart, record, windowStart);
    if (fault !== undefined) throw damaged(file, offset, fault);
    if (!visit(loaded)) return;
    offset += record.recordLength;
  }
}
