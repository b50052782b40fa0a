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
 * small chunks while it would otherwise wait (writeZerosAhead): when less than half a lead is left
 * past `end`, it extends the file by one lead, so that appends rarely extend in the commit's path.
 * An extent of 0 grows the file write by write: the registry (written once per new name), and
 * every file of a store whose commits do not sync (StorageWriterOptions.preallocate).
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
  /** Where the step of zeros that writeZerosAhead is writing ends (≤ allocated: none under way). */
  #zerosTarget = 0;

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
   * True when zeros ahead are being written (writeZerosAhead), or when those left past `end` have
   * fallen below half the lead (as many bytes as the file holds, from 64 KiB up to one extent) and
   * the file may still grow.
   */
  get zerosWanted(): boolean {
    if (this.#extentBytes === 0) return false;
    if (this.allocated < this.#zerosTarget) return true;
    return this.allocated - this.end < this.#lead() / 2 && this.allocated < this.#limit;
  }

  /**
   * Writes up to `maxBytes` of zeros at `allocated`, so that the writer can do in a moment it would
   * otherwise wait what a later append would do in its path. Once the zeros left fall below half
   * the lead, the file is extended by one step as #extend would (up to `allocated` + the lead,
   * within the limit), over as many calls as that takes; between two such steps the file's size does
   * not change, so a commit's fdatasync finds no size change to journal. The zeros are synced with
   * the next sync of the file (its `dirty` flag). Returns the bytes written (0 when nothing is wanted).
   */
  writeZerosAhead(maxBytes: number): number {
    if (!this.zerosWanted) return 0;
    if (this.allocated >= this.#zerosTarget) {
      this.#zerosTarget = Math.min(this.allocated + this.#lead(), this.#limit);
    }
    const length = Math.min(maxBytes, ZEROS.byteLength, this.#zerosTarget - this.allocated);
    this.#io.write(this.fd, ZEROS.subarray(0, length), this.allocated);
    this.allocated += length;
    this.dirty = true;
    return length;
  }

  close(): void {
    this.#io.close(this.fd);
  }

  /** The zeros kept ahead of `end`: as many bytes as the file holds, from 64 KiB up to one extent. */
  #lead(): number {
    return this.#stepFor(this.end);
  }

  /**
   * How far the file grows past a size: as far as that size, from 64 KiB up to extentBytes, so that
   * extents double and a small store does not start at megabytes.
   */
  #stepFor(size: number): number {
    return Math.min(this.#extentBytes, Math.max(FIRST_EXTENT_BYTES, size));
  }

  #extend(needed: number): void {
    const step = this.#stepFor(this.allocated);
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
