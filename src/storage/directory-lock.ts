import * as fs from 'node:fs';
import { join } from 'node:path';
import { RingStoreError } from '../errors.js';

const LOCK_FILE = 'LOCK';

/**
 * One process holds one data directory: two writers appending to the same files would interleave
 * records and corrupt the log. The lock is a file `<dir>/LOCK` created exclusively, holding the
 * owner's pid. A lock left by a process that no longer runs (SIGKILL, power loss) is stale and is
 * taken over, so crash recovery needs no manual step; a lock held by a live process, this one
 * included, refuses the open with STORE_LOCKED.
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
    fs.mkdirSync(dir, { recursive: true });
    const path = join(dir, LOCK_FILE);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = fs.openSync(path, 'wx', 0o644);
        try {
          fs.writeSync(fd, `${process.pid}\n`);
        } finally {
          fs.closeSync(fd);
        }
        return new DirectoryLock(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const owner = readOwner(path);
      if (owner !== undefined && isRunning(owner)) {
        const who = owner === process.pid ? 'another store in this process' : `process ${owner}`;
        throw new RingStoreError('STORE_LOCKED', `the data directory is held by ${who}`, { pid: owner });
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

function readOwner(path: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(path, 'utf8'), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
