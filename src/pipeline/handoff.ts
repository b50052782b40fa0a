/**
 * When a producer hands its published records on to the next stage (the CRC dispatcher, or the
 * writer when CRCs are computed inline). Handing on costs a thread wake-up or a pool message, so it
 * is batched: once per iteration of the thread's event loop (setImmediate: after every I/O callback
 * of the iteration has run), however many puts the iteration made, and additionally each time
 * `handoffBytes` of records were published since the last hand-off.
 *
 * Per iteration, not per callback: a server reads many requests in one poll phase, each in its own
 * callback with its own microtask checkpoint; a hand-off per microtask checkpoint would wake the
 * writer once per request and split their batches into as many small commits. setImmediate runs once,
 * after all of them, so the writer gets them in one piece.
 *
 * The second rule keeps the stages overlapped. With only the first, a burst of puts reaches the
 * CRC pool and the writer in one piece after the producer's whole turn; everything then commits
 * together, completes together and is replaced together, so the producer, the CRC pool and the
 * writer's fsyncs take turns instead of working at the same time. Handing on a burst in slices lets
 * the writer commit the first slice while the producer still encodes the rest.
 */
export class Handoff {
  readonly #flush: () => void;
  readonly #handoffBytes: number;
  #pendingBytes = 0;
  #scheduled = false;
  readonly #endOfTurn = (): void => {
    this.#scheduled = false;
    if (this.#pendingBytes === 0) return;
    this.#pendingBytes = 0;
    this.#flush();
  };

  /** `handoffBytes` ≤ 0 hands on only once per event-loop iteration. */
  constructor(flush: () => void, handoffBytes: number) {
    this.#flush = flush;
    this.#handoffBytes = handoffBytes > 0 ? handoffBytes : Number.POSITIVE_INFINITY;
  }

  /** A record of `bytes` ring bytes was published. */
  published(bytes: number): void {
    this.#pendingBytes += bytes;
    if (this.#pendingBytes >= this.#handoffBytes) {
      this.#pendingBytes = 0;
      this.#flush();
      return;
    }
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#endOfTurn);
  }
}
