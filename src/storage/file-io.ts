import * as fs from 'node:fs';

/**
 * The one door through which the storage writer, recovery, readers and verify touch files.
 * It is synchronous on purpose: the writer runs on its own thread (or in-process for tests and
 * benches) and a synchronous call sequence makes "data before index, fsync before ack" obvious.
 * Tests swap in FaultInjectingFileIO to fail chosen operations or simulate power loss.
 *
 * Handles are plain numbers (file descriptors for the real implementation).
 */
export type OpenMode =
  /** Existing file, read only. */
  | 'read'
  /** Existing file, read and write. */
  | 'readwrite'
  /** Read and write; created empty when missing, never truncated when present. */
  | 'create';

export interface FileIO {
  open(path: string, mode: OpenMode): number;
  /** Writes all of `data` at `position` (a short write is retried until done or it throws). */
  write(fd: number, data: Uint8Array, position: number): void;
  /** Reads up to `length` bytes at `position` into `buffer[offset…]`; returns the count read. */
  read(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number;
  /** Flushes data and metadata of the file to stable storage. */
  fsync(fd: number): void;
  /** Flushes data (and the size, which appends need) of the file to stable storage. */
  fdatasync(fd: number): void;
  /** fdatasync off the calling thread (libuv's pool for real files), so the caller can go on. */
  fdatasyncAsync(fd: number): Promise<void>;
  truncate(fd: number, size: number): void;
  size(fd: number): number;
  close(fd: number): void;
  rename(from: string, to: string): void;
  unlink(path: string): void;
  /** Creates the directory and missing parents; no error when it exists. */
  mkdir(path: string): void;
  /** Entry names of a directory, sorted. */
  readdir(path: string): string[];
  exists(path: string): boolean;
  isDirectory(path: string): boolean;
  /** Makes the directory's entries (created, renamed, removed files) durable. */
  fsyncDir(path: string): void;
}

/** FileIO on node:fs. */
export const realFileIO: FileIO = Object.freeze({
  open(path: string, mode: OpenMode): number {
    if (mode === 'read') return fs.openSync(path, 'r');
    if (mode === 'readwrite') return fs.openSync(path, 'r+');
    return fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
  },
  write(fd: number, data: Uint8Array, position: number): void {
    let done = 0;
    while (done < data.byteLength) {
      done += fs.writeSync(fd, data, done, data.byteLength - done, position + done);
    }
  },
  read(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number {
    let done = 0;
    while (done < length) {
      const n = fs.readSync(fd, buffer, offset + done, length - done, position + done);
      if (n === 0) break;
      done += n;
    }
    return done;
  },
  fsync(fd: number): void {
    fs.fsyncSync(fd);
  },
  fdatasync(fd: number): void {
    fs.fdatasyncSync(fd);
  },
  fdatasyncAsync(fd: number): Promise<void> {
    return new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
  },
  truncate(fd: number, size: number): void {
    fs.ftruncateSync(fd, size);
  },
  size(fd: number): number {
    return fs.fstatSync(fd).size;
  },
  close(fd: number): void {
    fs.closeSync(fd);
  },
  rename(from: string, to: string): void {
    fs.renameSync(from, to);
  },
  unlink(path: string): void {
    fs.unlinkSync(path);
  },
  mkdir(path: string): void {
    fs.mkdirSync(path, { recursive: true });
  },
  readdir(path: string): string[] {
    return fs.readdirSync(path).sort();
  },
  exists(path: string): boolean {
    return fs.existsSync(path);
  },
  isDirectory(path: string): boolean {
    try {
      return fs.statSync(path).isDirectory();
    } catch {
      return false;
    }
  },
  fsyncDir(path: string): void {
    const fd = fs.openSync(path, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  },
});

/** Replaces a file's content with `bytes` (creating it when missing) and fdatasyncs it. */
export function writeWholeFile(io: FileIO, path: string, bytes: Uint8Array): void {
  const fd = io.open(path, 'create');
  try {
    io.truncate(fd, 0);
    io.write(fd, bytes, 0);
    io.fdatasync(fd);
  } finally {
    io.close(fd);
  }
}

/** The bytes of a file from `from` to its end (empty when it does not exist or is shorter). */
export function readFileFrom(io: FileIO, path: string, from: number): Uint8Array {
  if (from === 0) return readWholeFile(io, path);
  if (!io.exists(path)) return new Uint8Array(0);
  const fd = io.open(path, 'read');
  try {
    const size = io.size(fd);
    if (size <= from) return new Uint8Array(0);
    const bytes = new Uint8Array(size - from);
    return bytes.subarray(0, io.read(fd, bytes, 0, bytes.byteLength, from));
  } finally {
    io.close(fd);
  }
}

/** Reads a whole file through `io` (empty when it does not exist). */
export function readWholeFile(io: FileIO, path: string): Uint8Array {
  if (!io.exists(path)) return new Uint8Array(0);
  const fd = io.open(path, 'read');
  try {
    const size = io.size(fd);
    const buffer = new Uint8Array(size);
    const got = io.read(fd, buffer, 0, size, 0);
    return got === size ? buffer : buffer.subarray(0, got);
  } finally {
    io.close(fd);
  }
}

/** What the system says when a path cannot be made a directory: the caller named a wrong path. */
const UNUSABLE_PATH: ReadonlySet<string> = new Set([
  'EEXIST',
  'ENOTDIR',
  'ENOENT',
  'EACCES',
  'EPERM',
  'EROFS',
  'ENAMETOOLONG',
  'ELOOP',
]);

/** Whether `err` says that a path cannot be made a directory (as opposed to an I/O failure). */
export function isUnusablePath(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && UNUSABLE_PATH.has(code);
}
