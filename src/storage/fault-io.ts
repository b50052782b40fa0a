import type { FileIO, OpenMode } from './file-io.js';

/**
 * An in-memory file system implementing FileIO, for tests that must see what survives a failure.
 *
 * - `failNth(kind, n)`: the n-th operation of that kind from now on throws an EIO error
 *   (kinds: write, fsync, rename, open; fsync covers fsync, fdatasync and fsyncDir).
 * - `powerLossAfter(k)`: after k more operations of any kind the "machine" stops: every later
 *   operation throws EIO and changes nothing, so the image is frozen at the instant of the loss.
 * - `crash(choose?)`: a new FaultInjectingFileIO holding what a real disk may still hold after a
 *   power loss, at page granularity. For each file, S is its synced image (as of its last
 *   fsync/fdatasync, length Ls) and C its current image (length Lc). The surviving size is Ls or Lc
 *   (`choose.size`: a crash can persist a new size without the bytes), and every PAGE_BYTES page
 *   whose bytes differ between S and C (both read as zeros past their ends) is independently
 *   persisted — bytes of C — or not — bytes of S, zeros past Ls (`choose.page`). Without `choose`
 *   only synced bytes survive. Directory entries are as of the parent's last fsyncDir, so files
 *   created, renamed or removed without a following fsyncDir revert.
 *   `crashChoice(mode, random)` builds seeded choices (none / all / random subset / torn).
 *
 * Paths are absolute POSIX paths; the root directory itself always exists.
 */
export type FaultKind = 'write' | 'fsync' | 'rename' | 'open';

/** The unit in which a power loss keeps or drops unsynced bytes. */
export const PAGE_BYTES = 4096;

/**
 * What a power loss keeps of each file's unsynced changes. `size` is asked for every file whose
 * synced and current sizes differ; `page` for every page whose bytes differ, in increasing page
 * order per file (true: the page's current bytes survive).
 */
export interface CrashChoice {
  size(path: string): 'synced' | 'current';
  page(path: string, index: number): boolean;
}

/**
 * Seeded crash choices:
 *   none    nothing unsynced survives (sizes as synced)
 *   all     every unsynced page and size survives (a clean stop)
 *   random  each size and page independently, by `random`
 *   torn    each file's new size and every changed page but its first survive: the later page of
 *           a write reaches the disk, the earlier (partly old) page does not
 */
export type CrashMode = 'none' | 'all' | 'random' | 'torn';
export const CRASH_MODES: readonly CrashMode[] = ['none', 'all', 'random', 'torn'];

export function crashChoice(mode: CrashMode, random: () => number): CrashChoice {
  const firstPage = new Map<string, number>();
  return {
    size: () => {
      if (mode === 'none') return 'synced';
      if (mode === 'random') return random() < 0.5 ? 'synced' : 'current';
      return 'current';
    },
    page: (path, index) => {
      if (mode === 'none') return false;
      if (mode === 'all') return true;
      if (mode === 'random') return random() < 0.5;
      const first = firstPage.get(path);
      if (first === undefined) firstPage.set(path, index);
      return first !== undefined && index !== first;
    },
  };
}

/** Granularity of the copy-on-write of synced bytes (a change copies only the pages it touches). */
const COPY_PAGE_BYTES = 4096;

class FileNode {
  readonly kind = 'file' as const;
  data: Uint8Array;
  length: number;
  /** Bytes [0, syncedLength) are durable: as in `data`, except pages changed since (syncedPages). */
  syncedLength: number;
  /** Durable content of the pages changed since the last sync, by page index. */
  readonly syncedPages = new Map<number, Uint8Array>();

  constructor(content: Uint8Array = new Uint8Array(0)) {
    this.data = Uint8Array.from(content);
    this.length = content.byteLength;
    this.syncedLength = content.byteLength;
  }

  content(): Uint8Array {
    return this.data.subarray(0, this.length);
  }

  synced(): Uint8Array {
    if (this.syncedPages.size === 0) return this.data.subarray(0, this.syncedLength);
    const out = new Uint8Array(this.syncedLength);
    out.set(this.data.subarray(0, Math.min(this.length, this.syncedLength)));
    for (const [page, bytes] of this.syncedPages) out.set(bytes, page * COPY_PAGE_BYTES);
    return out;
  }

  sync(): void {
    this.syncedLength = this.length;
    this.syncedPages.clear();
  }

  /** Keeps the durable bytes of the pages a change of [from, to) of the live content touches. */
  beforeChange(from: number, to: number): void {
    const end = Math.min(to, this.syncedLength);
    for (let page = Math.floor(from / COPY_PAGE_BYTES); page * COPY_PAGE_BYTES < end; page++) {
      if (this.syncedPages.has(page)) continue;
      const start = page * COPY_PAGE_BYTES;
      this.syncedPages.set(
        page,
        this.data.slice(start, Math.min(start + COPY_PAGE_BYTES, this.syncedLength)),
      );
    }
  }

  ensureCapacity(size: number): void {
    if (size <= this.data.byteLength) return;
    const grown = new Uint8Array(Math.max(size, this.data.byteLength * 2, 64));
    grown.set(this.content());
    this.data = grown;
  }
}

class DirNode {
  readonly kind = 'dir' as const;
  readonly entries = new Map<string, Node>();
  durable = new Map<string, Node>();
}

type Node = FileNode | DirNode;

interface Handle {
  node: FileNode;
  writable: boolean;
}

export class FaultInjectingError extends Error {
  readonly code = 'EIO';
  constructor(operation: string, path: string) {
    super(`EIO: injected i/o error, ${operation} '${path}'`);
  }
}

function enoent(operation: string, path: string): Error {
  const err = new Error(`ENOENT: no such file or directory, ${operation} '${path}'`) as Error & {
    code: string;
  };
  err.code = 'ENOENT';
  return err;
}

function splitPath(path: string): string[] {
  return path.split('/').filter((part) => part !== '' && part !== '.');
}

export class FaultInjectingFileIO implements FileIO {
  readonly #root: DirNode;
  readonly #handles = new Map<number, Handle>();
  #nextFd = 3;
  readonly #failAt = new Map<FaultKind, number[]>();
  readonly #counts: Record<FaultKind, number> = { write: 0, fsync: 0, rename: 0, open: 0 };
  #operations = 0;
  #powerLossAt = Number.POSITIVE_INFINITY;

  constructor(root: DirNode = new DirNode()) {
    this.#root = root;
  }

  /** Operations performed so far (every FileIO call counts as one). */
  get operations(): number {
    return this.#operations;
  }

  /** True once a simulated power loss has happened. */
  get poweredOff(): boolean {
    return this.#operations >= this.#powerLossAt;
  }

  /** Makes the n-th (1-based) operation of `kind` from now on fail with EIO. */
  failNth(kind: FaultKind, n: number): void {
    const list = this.#failAt.get(kind) ?? [];
    list.push(this.#counts[kind] + n);
    this.#failAt.set(kind, list);
  }

  /** After `k` more operations every operation fails and nothing changes any more. */
  powerLossAfter(k: number): void {
    this.#powerLossAt = this.#operations + k;
  }

  /** What the disk holds after a power loss now (see the module comment). */
  crash(choose?: CrashChoice): FaultInjectingFileIO {
    return new FaultInjectingFileIO(survivingDir(this.#root, '', choose));
  }

  /** The current (not necessarily durable) content of a file, for tests. */
  fileContent(path: string): Uint8Array {
    const node = this.#lookup(path);
    if (node?.kind !== 'file') throw enoent('read', path);
    return Uint8Array.from(node.content());
  }

  /** Replaces a file's content and marks it durable, for tests that damage stored files. */
  setFileContent(path: string, content: Uint8Array): void {
    const node = this.#lookup(path);
    if (node?.kind !== 'file') throw enoent('write', path);
    node.data = Uint8Array.from(content);
    node.length = content.byteLength;
    node.sync();
  }

  /** Every file path under `dir`, sorted (for tests). */
  listFiles(dir = '/'): string[] {
    const out: string[] = [];
    const walk = (node: DirNode, prefix: string) => {
      for (const [name, child] of node.entries) {
        const path = `${prefix}/${name}`;
        if (child.kind === 'file') out.push(path);
        else walk(child, path);
      }
    };
    const start = this.#lookup(dir);
    if (start?.kind === 'dir') walk(start, dir === '/' ? '' : dir.replace(/\/$/, ''));
    return out.sort();
  }

  open(path: string, mode: OpenMode): number {
    this.#begin('open', 'open', path);
    let node = this.#lookup(path);
    if (!node) {
      if (mode !== 'create') throw enoent('open', path);
      const { parent, name } = this.#parentOf(path, 'open');
      node = new FileNode();
      parent.entries.set(name, node);
    }
    if (node.kind !== 'file') throw new Error(`EISDIR: illegal operation on a directory, open '${path}'`);
    const fd = this.#nextFd++;
    this.#handles.set(fd, { node, writable: mode !== 'read' });
    return fd;
  }

  write(fd: number, data: Uint8Array, position: number): void {
    this.#begin('write', 'write', `fd ${fd}`);
    const handle = this.#handle(fd);
    if (!handle.writable) throw new Error('EBADF: bad file descriptor, write');
    const node = handle.node;
    const end = position + data.byteLength;
    node.beforeChange(position, end);
    node.ensureCapacity(end);
    if (position > node.length) node.data.fill(0, node.length, position);
    node.data.set(data, position);
    node.length = Math.max(node.length, end);
  }

  read(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number {
    this.#begin(undefined, 'read', `fd ${fd}`);
    const node = this.#handle(fd).node;
    const n = Math.max(0, Math.min(length, node.length - position));
    buffer.set(node.data.subarray(position, position + n), offset);
    return n;
  }

  fsync(fd: number): void {
    this.#begin('fsync', 'fsync', `fd ${fd}`);
    this.#handle(fd).node.sync();
  }

  fdatasync(fd: number): void {
    this.#begin('fsync', 'fdatasync', `fd ${fd}`);
    this.#handle(fd).node.sync();
  }

  /** Syncs at once (the image is exact at every instant) and reports it through a promise. */
  fdatasyncAsync(fd: number): Promise<void> {
    try {
      this.fdatasync(fd);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  truncate(fd: number, size: number): void {
    this.#begin('write', 'ftruncate', `fd ${fd}`);
    const handle = this.#handle(fd);
    if (!handle.writable) throw new Error('EBADF: bad file descriptor, ftruncate');
    const node = handle.node;
    node.beforeChange(Math.min(size, node.length), Number.POSITIVE_INFINITY);
    node.ensureCapacity(size);
    if (size > node.length) node.data.fill(0, node.length, size);
    node.length = size;
  }

  size(fd: number): number {
    this.#begin(undefined, 'fstat', `fd ${fd}`);
    return this.#handle(fd).node.length;
  }

  close(fd: number): void {
    this.#begin(undefined, 'close', `fd ${fd}`);
    this.#handle(fd);
    this.#handles.delete(fd);
  }

  rename(from: string, to: string): void {
    this.#begin('rename', 'rename', from);
    const source = this.#parentOf(from, 'rename');
    const node = source.parent.entries.get(source.name);
    if (!node) throw enoent('rename', from);
    const target = this.#parentOf(to, 'rename');
    source.parent.entries.delete(source.name);
    target.parent.entries.set(target.name, node);
  }

  unlink(path: string): void {
    this.#begin(undefined, 'unlink', path);
    const { parent, name } = this.#parentOf(path, 'unlink');
    const node = parent.entries.get(name);
    if (node?.kind !== 'file') throw enoent('unlink', path);
    parent.entries.delete(name);
  }

  mkdir(path: string): void {
    this.#begin(undefined, 'mkdir', path);
    let dir = this.#root;
    for (const part of splitPath(path)) {
      let child = dir.entries.get(part);
      if (!child) {
        child = new DirNode();
        dir.entries.set(part, child);
      }
      if (child.kind !== 'dir') throw new Error(`EEXIST: file already exists, mkdir '${path}'`);
      dir = child;
    }
  }

  readdir(path: string): string[] {
    this.#begin(undefined, 'scandir', path);
    const node = this.#lookup(path);
    if (node?.kind !== 'dir') throw enoent('scandir', path);
    return [...node.entries.keys()].sort();
  }

  exists(path: string): boolean {
    this.#begin(undefined, 'access', path);
    return this.#lookup(path) !== undefined;
  }

  isDirectory(path: string): boolean {
    this.#begin(undefined, 'stat', path);
    return this.#lookup(path)?.kind === 'dir';
  }

  fsyncDir(path: string): void {
    this.#begin('fsync', 'fsync', path);
    const node = this.#lookup(path);
    if (node?.kind !== 'dir') throw enoent('fsync', path);
    node.durable = new Map(node.entries);
  }

  /** Counts the operation and throws when a fault or the power loss hits it. */
  #begin(kind: FaultKind | undefined, operation: string, target: string): void {
    if (this.#operations >= this.#powerLossAt) throw new FaultInjectingError(operation, target);
    this.#operations++;
    if (kind === undefined) return;
    const count = ++this.#counts[kind];
    const list = this.#failAt.get(kind);
    const at = list?.indexOf(count) ?? -1;
    if (list && at >= 0) {
      list.splice(at, 1);
      throw new FaultInjectingError(operation, target);
    }
  }

  #handle(fd: number): Handle {
    const handle = this.#handles.get(fd);
    if (!handle) throw new Error(`EBADF: bad file descriptor ${fd}`);
    return handle;
  }

  #lookup(path: string): Node | undefined {
    let node: Node = this.#root;
    for (const part of splitPath(path)) {
      if (node.kind !== 'dir') return undefined;
      const child: Node | undefined = node.entries.get(part);
      if (!child) return undefined;
      node = child;
    }
    return node;
  }

  #parentOf(path: string, operation: string): { parent: DirNode; name: string } {
    const parts = splitPath(path);
    const name = parts.pop();
    const parent = this.#lookup(parts.join('/'));
    if (!name || !parent || parent.kind !== 'dir') throw enoent(operation, path);
    return { parent, name };
  }
}

function survivingDir(dir: DirNode, path: string, choose: CrashChoice | undefined): DirNode {
  const copy = new DirNode();
  for (const [name, node] of dir.durable) {
    const childPath = `${path}/${name}`;
    copy.entries.set(
      name,
      node.kind === 'dir' ? survivingDir(node, childPath, choose) : survivingFile(node, childPath, choose),
    );
  }
  copy.durable = new Map(copy.entries);
  return copy;
}

function survivingFile(file: FileNode, path: string, choose: CrashChoice | undefined): FileNode {
  const synced = file.synced();
  if (!choose) return new FileNode(synced);
  const current = file.content();
  const span = Math.max(synced.byteLength, current.byteLength);
  // Both images read as zeros past their ends; a page survives whole or not at all.
  const image = new Uint8Array(span);
  image.set(synced);
  const pages = Math.ceil(span / PAGE_BYTES);
  for (let page = 0; page < pages; page++) {
    const from = page * PAGE_BYTES;
    const to = Math.min(span, from + PAGE_BYTES);
    if (!pageDiffers(synced, current, from, to)) continue;
    if (!choose.page(path, page)) continue;
    image.fill(0, from, to);
    image.set(current.subarray(from, Math.min(to, current.byteLength)), from);
  }
  const size =
    synced.byteLength === current.byteLength || choose.size(path) === 'synced'
      ? synced.byteLength
      : current.byteLength;
  return new FileNode(image.subarray(0, size));
}

function pageDiffers(a: Uint8Array, b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return true;
  return false;
}
