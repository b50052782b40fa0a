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
 * the extent itself costs one larger sync once per extent. The writer also writes zeros ahead in
 * small chunks while it would otherwise wait (writeZerosAhead), keeping about one extent ahead of
 * `end`, so that appends rarely extend in the commit's path. An extent of 0 grows the file write by
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

  /**
   * True when the zeros ahead of `end` are less than one extent (and the file may still grow): an
   * append soon would have to write an extent first.
   */
  get zerosWanted(): boolean {
    return this.#extentBytes > 0 && this.allocated < this.#leadTarget();
  }

  /**
   * Writes up to `maxBytes` of zeros at `allocated`, towards one extent ahead of `end`, so that the
   * writer can do in a moment it would otherwise wait what the next append would do in its path.
   * Returns the bytes written (0 when nothing is wanted).
   */
  writeZerosAhead(maxBytes: number): number {
    if (!this.zerosWanted) return 0;
    const length = Math.min(maxBytes, ZEROS.byteLength, this.#leadTarget() - this.allocated);
    this.#io.write(this.fd, ZEROS.subarray(0, length), this.allocated);
    this.allocated += length;
    this.dirty = true;
    return length;
  }

  close(): void {
    this.#io.close(this.fd);
  }

  /**
   * Where the zeros written ahead stop: as many bytes past `end` as the file holds, from 64 KiB up
   * to one extent, never past the limit (a small file stays small).
   */
  #leadTarget(): number {
    const lead = Math.min(this.#extentBytes, Math.max(FIRST_EXTENT_BYTES, this.end));
    return Math.min(this.end + lead, this.#limit);
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
