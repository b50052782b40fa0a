import { RingStoreError } from '../../errors.js';

/**
 * Whether a cluster node routes a failed put again, and what the put answers when it gives up
 * (docs/CLUSTER.md, "How a put travels"). One per put, fed every failed attempt:
 *
 *   NOT_OWNER             never published (the owner stepped down or did not answer): again until
 *                         `putTimeoutMs` after the put began, or after its last unknown outcome
 *   CLUSTER_UNAVAILABLE   the outcome is unknown (a publish or a forwarded request went unanswered):
 *                         again only when the put carries an idempotency key, which makes a later
 *                         attempt replay this one if it was stored after all; until three times
 *                         `putTimeoutMs` after the put began, since one unknown attempt may take a
 *                         publish timeout and a catch-up
 *   anything else         an answer: never again
 *
 * Once any attempt's outcome was unknown, the put can no longer say "nothing was stored": if it
 * then gives up on NOT_OWNER, it answers CLUSTER_UNAVAILABLE instead.
 */
export class PutRetry {
  readonly #keyed: boolean;
  readonly #putTimeoutMs: number;
  readonly #started: number;
  /** When the last unknown outcome came back (undefined: none so far). */
  #unknownAt: number | undefined;

  constructor(keyed: boolean, putTimeoutMs: number, now: number) {
    this.#keyed = keyed;
    this.#putTimeoutMs = putTimeoutMs;
    this.#started = now;
  }

  /** True when an attempt's outcome was unknown. */
  get unknown(): boolean {
    return this.#unknownAt !== undefined;
  }

  /** Whether to route the put again after this failed attempt. */
  again(err: unknown, now: number): boolean {
    if (!(err instanceof RingStoreError)) return false;
    const total = now - this.#started;
    if (err.code === 'CLUSTER_UNAVAILABLE') {
      this.#unknownAt = now;
      return this.#keyed && total <= 3 * this.#putTimeoutMs;
    }
    if (err.code === 'NOT_OWNER') {
      if (this.#unknownAt === undefined) return total <= this.#putTimeoutMs;
      return now - this.#unknownAt <= this.#putTimeoutMs && total <= 3 * this.#putTimeoutMs;
    }
    return false;
  }

  /** What the put answers when it gives up on `err`. */
  answer(err: unknown): unknown {
    if (this.unknown && err instanceof RingStoreError && err.code === 'NOT_OWNER') {
      return new RingStoreError(
        'CLUSTER_UNAVAILABLE',
        `${err.message}; an earlier attempt of this put went unanswered and may have been stored: retry it with the same idempotency key`,
        err.details,
      );
    }
    return err;
  }
}
