import { type CrcTask, type CrcTaskResult, publishedRunEnd, rejectUnfinished } from './crc-stage.js';
import type { Ring } from './ring.js';
import { asyncWait } from './wait-strategy.js';

/** Bound of one wait for producers in other threads; a missed wake-up costs at most this. */
const PUBLISH_WAIT_MS = 200;

export interface CrcDispatcherOptions {
  /** Runs one task on the pool; rejects when the worker running it died. */
  run(task: CrcTask): Promise<CrcTaskResult>;
  /** Tasks in flight at most (a few per pool thread); a backlog beyond them becomes one larger range. */
  maxInFlight: number;
  /** Largest range handed out at once, in ring bytes. */
  maxTaskBytes: number;
  /** Called after a pool worker died, with how many batches it failed. */
  onWorkerLost?(error: unknown, failedBatches: number): void;
}

/**
 * Main-thread side of the CRC stage (diagram in crc-stage.ts). Producers on the main thread call
 * kick(); producers in other threads publish and bump dispatchWake, which this dispatcher watches
 * with Atomics.waitAsync (never a blocking wait) once `watchOtherThreads()` was called.
 */
export class CrcDispatcher {
  readonly #ring: Ring;
  readonly #options: CrcDispatcherOptions;
  #cursor: number;
  #inFlight = 0;
  #scheduled = false;
  #watching = false;
  #armed = false;
  #stopped = false;
  readonly #run = { published: 0 };
  readonly #scan = () => {
    this.#scheduled = false;
    this.#dispatch();
  };

  constructor(ring: Ring, options: CrcDispatcherOptions) {
    this.#ring = ring;
    this.#options = options;
    this.#cursor = ring.claimCursor();
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Schedules one scan for the end of the current turn, however many puts call it. */
  kick(): void {
    if (this.#scheduled || this.#stopped) return;
    this.#scheduled = true;
    queueMicrotask(this.#scan);
  }

  /** Hands every published record on to the pool now (as far as maxInFlight allows). */
  dispatchNow(): void {
    if (!this.#stopped) this.#dispatch();
  }

  /** From now on, also pick up records published by producers in other threads. */
  watchOtherThreads(): void {
    this.#watching = true;
    this.kick();
  }

  stop(): void {
    this.#stopped = true;
  }

  /**
   * The writer passes PADDING records on its own (and reclaims them), so it may get ahead of this
   * cursor by padding alone; everything before committedCursor is done, so skip to it.
   */
  #catchUp(): void {
    const committed = this.#ring.committedCursor();
    if (((committed - this.#cursor) | 0) > 0) this.#cursor = committed;
  }

  #dispatch(): void {
    const ring = this.#ring;
    this.#catchUp();
    while (!this.#stopped && this.#inFlight < this.#options.maxInFlight) {
      const start = this.#cursor;
      const end = publishedRunEnd(ring, start, this.#options.maxTaskBytes, this.#run);
      if (end === start) break;
      this.#cursor = end;
      if (this.#run.published === 0) continue;
      this.#inFlight++;
      const task: CrcTask = { start, end };
      this.#options.run(task).then(this.#settled, (error: unknown) => {
        const failed = rejectUnfinished(ring, task);
        this.#options.onWorkerLost?.(error, failed);
        this.#settled();
      });
    }
    if (this.#inFlight === 0) this.#armWait();
  }

  readonly #settled = () => {
    this.#inFlight--;
    this.#dispatch();
  };

  /** Waits (asynchronously, bounded) for a producer in another thread to publish. */
  #armWait(): void {
    if (!this.#watching || this.#armed || this.#stopped) return;
    const ring = this.#ring;
    const seen = ring.beginDispatchWait();
    this.#catchUp();
    if (publishedRunEnd(ring, this.#cursor, this.#options.maxTaskBytes, this.#run) !== this.#cursor) {
      ring.endDispatchWait();
      this.kick();
      return;
    }
    const outcome = ring.waitForPublish(seen, PUBLISH_WAIT_MS, asyncWait);
    if (typeof outcome === 'string') {
      ring.endDispatchWait();
      this.kick();
      return;
    }
    this.#armed = true;
    outcome.then(this.#woken);
  }

  readonly #woken = (): void => {
    this.#armed = false;
    this.#ring.endDispatchWait();
    this.kick();
  };
}
