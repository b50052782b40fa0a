import * as fs from 'node:fs';
import { join } from 'node:path';
import { RingStoreError } from '../errors.js';
import { isUnusablePath } from './file-io.js';

const LOCK_FILE = 'LOCK';

/**
 * One process holds one data directory: two writers appending to the same files would interleave
 * records and corrupt the log. The lock is a file `<dir>/LOCK` created exclusively, naming its
 * owner: `<pid> <start> <boot>\n`, where `start` is the process's start time (field 22 of
 * /proc/<pid>/stat, clock ticks since boot) and `boot` the kernel's boot id
 * (/proc/sys/kernel/random/boot_id). Where /proc is missing (macOS), both are `-` and only the pid
 * is compared.
 *
 * A lock left by a process that no longer runs (SIGKILL, power loss) is stale and is taken over,
 * so crash recovery needs no manual step. A pid alone cannot tell that: a container's server is
 * PID 1 on every start, so after a crash the new PID 1 would find "itself" in the lock and refuse
 * forever. The owner is alive only when its pid runs, with the same start time, in the same boot;
 * pid reuse cannot fake the start time (the kernel sets it when the process is created). A lock
 * held by a live process, this one included, refuses the open with STORE_LOCKED.
 *
 * Why not an OS lock (flock/fcntl) that dies with its holder: Node exposes none without a native
 * addon, and the libraries that do it (fs-ext, os-lock) need a native build; the lockfile
 * libraries without one (proper-lockfile) judge staleness by mtime, which a paused or slow
 * process defeats. Limits: pids of different pid namespaces (a host process and a container on a
 * shared volume) are not comparable; and two processes taking over the same stale lock at the same
 * instant could both remove it (the window is the takeover only, never a live owner's lock).
 *
 * The lock is advisory for ringstore processes only; it is taken by the thread that opens the
 * store (RingStore.open on the main thread, StorageEngine.open in-process), so a writer thread that
 * dies abruptly cannot leave its own process locked out: close() always releases it.
 */
export class DirectoryLock {
  readonly #path: string;
  #held = true;

  private constructor(path: string) {
    this.#path = path;
  }

  static acquire(dir: string): DirectoryLock {
    try {
      fs.mkdirSync(dir, { recursive: true });
    } catch (err) {
      // A file where the directory (or one of its parents) should be, no permission, and the like:
      // the caller named a directory that cannot be one.
      if (!isUnusablePath(err)) throw err;
      const { code } = err as NodeJS.ErrnoException;
      throw new RingStoreError('INVALID_OPTION', `the data directory ${dir} cannot be created (${code})`, {
        option: 'dir',
      });
    }
    const path = join(dir, LOCK_FILE);
    const self = currentOwner();
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = fs.openSync(path, 'wx', 0o644);
        try {
          fs.writeSync(fd, formatOwner(self));
        } finally {
          fs.closeSync(fd);
        }
        return new DirectoryLock(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const owner = readOwner(path);
      if (owner !== undefined && ownerIsAlive(owner, self)) {
        const who = sameProcess(owner, self) ? 'another store in this process' : `process ${owner.pid}`;
        throw new RingStoreError('STORE_LOCKED', `the data directory is held by ${who}`, { pid: owner.pid });
      }
      fs.rmSync(path, { force: true });
    }
    throw new RingStoreError('STORE_LOCKED', 'the data directory lock could not be taken');
  }

  release(): void {
    if (!this.#held) return;
    this.#held = false;
    fs.rmSync(this.#path, { force: true });
  }
}

/** Who holds a lock: a pid, and when known the process's start time and the boot it ran in. */
export interface LockOwner {
  pid: number;
  start: string | undefined;
  boot: string | undefined;
}

export function currentOwner(): LockOwner {
  return { pid: process.pid, start: processStartTime(process.pid), boot: bootId() };
}

export function formatOwner(owner: LockOwner): string {
  return `${owner.pid} ${owner.start ?? '-'} ${owner.boot ?? '-'}\n`;
}

/** Parses a LOCK file's text; a lock written before start time and boot id were recorded is `<pid>\n`. */
export function parseOwner(text: string): LockOwner | undefined {
  const [pidText, start, boot] = text.trim().split(/\s+/);
  const pid = Number(pidText);
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  const known = (field: string | undefined): string | undefined =>
    field === undefined || field === '-' || field === '' ? undefined : field;
  return { pid, start: known(start), boot: known(boot) };
}

function readOwner(path: string): LockOwner | undefined {
  try {
    return parseOwner(fs.readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

function sameProcess(owner: LockOwner, self: LockOwner): boolean {
  return owner.pid === self.pid && owner.start === self.start && owner.boot === self.boot;
}

/**
 * Whether the lock's owner still runs. A different boot id means every process of that boot is
 * gone; a running pid whose start time differs from the recorded one is a later process that got
 * the same pid.
 */
export function ownerIsAlive(owner: LockOwner, self: LockOwner = currentOwner()): boolean {
  if (owner.boot !== undefined && self.boot !== undefined && owner.boot !== self.boot) return false;
  if (!isRunning(owner.pid)) return false;
  if (owner.start === undefined) return true;
  const start = owner.pid === self.pid ? self.start : processStartTime(owner.pid);
  return start === undefined || start === owner.start;
}

/** Field 22 of /proc/<pid>/stat; the command name (field 2) may hold spaces and parentheses. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const afterName = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // afterName[0] is field 3 (state), so field 22 is afterName[19].
    const start = afterName[19];
    return start !== undefined && /^[0-9]+$/.test(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

let cachedBootId: string | undefined | null = null;

function bootId(): string | undefined {
  if (cachedBootId === null) {
    try {
      cachedBootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
    } catch {
      cachedBootId = undefined;
    }
  }
  return cachedBootId;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
