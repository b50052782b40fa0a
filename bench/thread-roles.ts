import { readFileSync } from 'node:fs';
import { BroadcastChannel, threadId } from 'node:worker_threads';

/**
 * Which OS thread is which. Node 20 names every thread `node` in /proc/…/comm and gives the main
 * thread no way to learn a worker's tid, so each worker announces its own: the bench's case child
 * runs with `--import thread-tag-preload.js` (inherited by every worker thread it starts), which
 * reads the worker's tid from /proc/thread-self/stat and posts it with the worker's threadId on a
 * BroadcastChannel. The case then names its workers by threadId (the writer, the CRC pool's
 * threads, producer threads); every other thread but the main one (tid = pid) is 'other': V8's
 * platform threads (GC, JIT), libuv's thread pool (asynchronous fs, fdatasync), native helpers.
 */
export type ThreadRole = 'main' | 'writer' | 'crc' | 'producer' | 'other';

export const THREAD_ROLES: readonly ThreadRole[] = ['main', 'writer', 'crc', 'producer', 'other'];

const CHANNEL = 'ringstore-bench-thread-tags';

interface ThreadTag {
  threadId: number;
  tid: number;
}

/** Tells the main thread's ThreadRoles which OS thread this worker runs on. */
export function announceThisThread(): void {
  const tid = Number(readFileSync('/proc/thread-self/stat', 'utf8').split(' ', 1)[0]);
  const channel = new BroadcastChannel(CHANNEL);
  const tag: ThreadTag = { threadId, tid };
  channel.postMessage(tag);
  channel.close();
}

/**
 * The main thread's side: collects the workers' announcements (it must exist before they start,
 * since a BroadcastChannel only delivers to channels open at the time of the post) and the roles
 * the case gives them.
 */
export class ThreadRoles {
  readonly #tidOf = new Map<number, number>();
  readonly #roleOf = new Map<number, ThreadRole>();
  readonly #waiting = new Map<number, () => void>();
  readonly #channel = new BroadcastChannel(CHANNEL);

  constructor() {
    this.#channel.onmessage = (message) => {
      const tag = (message as { data: ThreadTag }).data;
      this.#tidOf.set(tag.tid, tag.threadId);
      this.#waiting.get(tag.threadId)?.();
    };
    this.#channel.unref();
  }

  /** Names the worker with this threadId (Worker.threadId). */
  assign(workerThreadId: number, role: ThreadRole): void {
    this.#roleOf.set(workerThreadId, role);
  }

  /** Resolves once the worker with this threadId has announced its tid. */
  announced(workerThreadId: number): Promise<void> {
    if ([...this.#tidOf.values()].includes(workerThreadId)) return Promise.resolve();
    return new Promise((resolve) => this.#waiting.set(workerThreadId, resolve));
  }

  roleOf(tid: number): ThreadRole {
    if (tid === process.pid) return 'main';
    const workerThreadId = this.#tidOf.get(tid);
    return workerThreadId === undefined ? 'other' : (this.#roleOf.get(workerThreadId) ?? 'other');
  }

  close(): void {
    this.#channel.close();
  }
}
