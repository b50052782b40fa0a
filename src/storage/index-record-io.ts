import { RingStoreError } from '../errors.js';
import type { FileIO } from './file-io.js';
import {
  decodeIndexRecord,
  emptyIndexRecord,
  INDEX_FIXED_BYTES,
  type IndexRecord,
  MAX_INDEX_RECORD_BYTES,
} from './index-record.js';
import type { RecordCache } from './record-cache.js';

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
  if (length < INDEX_FIXED_BYTES || length > MAX_INDEX_RECORD_BYTES) throw damaged(file, offset, 'length');
  const bytes = new Uint8Array(length);
  if (io.read(fd, bytes, 0, length, offset) !== length) throw damaged(file, offset, 'short');
  const record = emptyIndexRecord();
  const fault = decodeIndexRecord(bytes, new DataView(bytes.buffer), 0, record, offset);
  if (fault !== undefined) throw damaged(file, offset, fault);
  return record;
}

/**
 * Random access to the records of one index file below a checkpoint (bytes that never change),
 * through a RecordCache: a miss is one positional read (two when the size hint falls short), the
 * record's CRC is checked once as it enters the cache, and a hit decodes the cached bytes.
 */
export class IndexRecordSource {
  readonly #io: FileIO;
  readonly fd: number;
  readonly #cache: RecordCache;
  readonly #fileKey: number;
  readonly #file: string;

  /** `fileKey`: the index file's key in the cache (RecordCache.newFileKey), the same for every source of one file. */
  constructor(io: FileIO, fd: number, cache: RecordCache, fileKey: number, file: string) {
    this.#io = io;
    this.fd = fd;
    this.#cache = cache;
    this.#fileKey = fileKey;
    this.#file = file;
  }

  /**
   * The record at `offset`; `sizeHint`, when known (from the batch's event count), is read at once:
   * a record is at most its fixed part, a 64-byte key and 12 bytes per event.
   */
  recordAt(offset: number, sizeHint = 4096): LoadedRecord {
    let bytes = this.#cache.get(this.#fileKey, offset);
    if (bytes === undefined) {
      bytes = this.#load(offset, sizeHint);
      this.#cache.set(this.#fileKey, offset, bytes);
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const record = emptyIndexRecord();
    const fault = decodeIndexRecord(bytes, view, 0, record, offset, false);
    if (fault !== undefined) throw damaged(this.#file, offset, fault);
    return { record, bytes, view };
  }

  close(): void {
    this.#io.close(this.fd);
  }

  /** Reads and checks the record at `offset`; returns its exact bytes. */
  #load(offset: number, sizeHint: number): Uint8Array {
    let buffer = new Uint8Array(Math.max(INDEX_FIXED_BYTES, sizeHint));
    let got = this.#io.read(this.fd, buffer, 0, buffer.byteLength, offset);
    if (got < 8) throw damaged(this.#file, offset, 'short');
    const length = new DataView(buffer.buffer).getUint32(0, true);
    if (length < INDEX_FIXED_BYTES || length > MAX_INDEX_RECORD_BYTES)
      throw damaged(this.#file, offset, 'length');
    if (length > got) {
      buffer = new Uint8Array(length);
      got = this.#io.read(this.fd, buffer, 0, length, offset);
      if (got < length) throw damaged(this.#file, offset, 'short');
    }
    const exact = buffer.byteLength === length ? buffer : buffer.slice(0, length);
    const fault = decodeIndexRecord(exact, new DataView(exact.buffer), 0, emptyIndexRecord(), offset);
    if (fault !== undefined) throw damaged(this.#file, offset, fault);
    return exact;
  }
}

/**
 * Sequential reading of index records from `from` up to `to` (a checkpoint's indexEnd), in windows
 * of `windowBytes`, outside the cache (a scan would evict everything else). `visit` returns false
 * to stop. The LoadedRecord object passed is reused, but each window is a new buffer that is never
 * written again: views of a record's bytes stay valid after the call.
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
      if (length > MAX_INDEX_RECORD_BYTES) throw damaged(file, offset, 'length');
      window = new Uint8Array(Math.max(length, Math.min(nextWindow, to - offset)));
      view = new DataView(window.buffer);
      nextWindow = Math.min(nextWindow * 2, windowBytes);
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
