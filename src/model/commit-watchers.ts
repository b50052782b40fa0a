import { RingStoreError } from '../errors.js';
import type { CommitNotice } from './event-store.js';

export type CommitListener = (notice: CommitNotice) => void;

/**
 * The watch() side of every store: listeners added and removed, told of each commit, and told once
 * more with `closed: true` when the store closes. A listener that throws is reported as a process
 * warning and never disturbs the store's own commit handling or the other listeners.
 */
export class CommitWatchers {
  readonly #listeners = new Set<CommitListener>();

  get size(): number {
    return this.#listeners.size;
  }

  add(listener: CommitListener): () => void {
    if (typeof listener !== 'function') {
      throw new RingStoreError('INVALID_OPTION', 'watch() takes a function', { option: 'listener' });
    }
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  notify(notice: CommitNotice): void {
    for (const listener of this.#listeners) deliver(listener, notice);
  }

  /** Sends the last notice (`closed: true`) and forgets every listener. */
  close(generation: number): void {
    const listeners = [...this.#listeners];
    this.#listeners.clear();
    const notice: CommitNotice = { generation, domains: [], closed: true };
    for (const listener of listeners) deliver(listener, notice);
  }
}

function deliver(listener: CommitListener, notice: CommitNotice): void {
  try {
    listener(notice);
  } catch (err) {
    process.emitWarning(`a watch() listener threw: ${String(err)}`);
  }
}
