import type { FileIO } from './file-io.js';

/**
 * One file that the writer appends to: a registry, an index or a data segment. It tracks where
 * the written bytes end (`end`), how far the file is allocated (`allocated`: its size, zeros past
 * `end`), and whether it has bytes not yet synced.
 *
 * Preallocation: before bytes go past `allocated`, the file is extended with zeros by one extent:
 * as large as the file already is, from 64 KiB up to `extentBytes` (at most up to `limit`, unless
 * the bytes themselves need more). Writes then land in
 * allocated blocks and leave the size alone, so the commit's fdatasync has no metadata to journal;
 * the extent itself costs one larger sync once per extent. An extent of 0 grows the file write by
 * write: the registry (written once per new name), and every file of a store whose commits do not
 * sync (StorageWriterOptions.preallocate).
 *
 *   0            end                  allocated
 *   | records    | zeros (preallocated)|
 */
export class AppendFile {
  readonly fd: number;
  end: number;
  allocated: number;
  dirty = false;
  readonly #io: FileIO;
  readonly #extentBytes: number;
  readonly #limit: number;

  constructor(io: FileIO, fd: number, end: number, extentBytes: number, limit = Number.POSITIVE_INFINITY) {
    this.#io = io;
    this.fd = fd;
    this.end = end;
    this.allocated = Math.max(end, io.size(fd));
    this.#extentBytes = extentBytes;
    this.#limit = limit;
  }

  /** Writes `bytes` at `end` and moves `end` past them. */
  append(bytes: Uint8Array): void {
    const needed = this.end + bytes.byteLength;
    if (needed > this.allocated && this.#extentBytes > 0) this.#extend(needed);
    this.#io.write(this.fd, bytes, this.end);
    this.end = needed;
    if (needed > this.allocated) this.allocated = needed;
    this.dirty = true;
  }

  /** fdatasync when there are unsynced bytes; returns 1 when it synced. */
  sync(timed: (sync: () => void) => void): number {
    if (!this.dirty) return 0;
    timed(() => this.#io.fdatasync(this.fd));
    this.dirty = false;
    return 1;
  }

  /** Starts an fdatasync off this thread when there are unsynced bytes; bytes written after it starts stay unsynced. */
  syncAsync(): Promise<void> | undefined {
    if (!this.dirty) return undefined;
    this.dirty = false;
    return this.#io.fdatasyncAsync(this.fd);
  }

  close(): void {
    this.#io.close(this.fd);
  }

  #extend(needed: number): void {
    // Extents double from 64 KiB up to extentBytes, so a small store does not start at megabytes.
    const step = Math.min(this.#extentBytes, Math.max(FIRST_EXTENT_BYTES, this.allocated));
    const target = Math.max(needed, Math.min(this.allocated + step, this.#limit));
    let at = this.allocated;
    while (at < target) {
      const length = Math.min(ZEROS.byteLength, target - at);
      this.#io.write(this.fd, ZEROS.subarray(0, length), at);
      at += length;
    }
    this.allocated = target;
    this.dirty = true;
  }
}

const ZEROS = new Uint8Array(1024 * 1024);
const FIRST_EXTENT_BYTES = 64 * 1024;
