import {
  CONTROL,
  CONTROL_BYTES,
  isPowerOfTwo,
  LAYOUT_MAGIC,
  LAYOUT_RING_BYTES_WORD,
  LIFECYCLE_CLOSING,
  LIFECYCLE_FAILED,
  LIFECYCLE_OPEN,
  MAX_RING_BYTES,
  MIN_RING_BYTES,
  maxRecordBytes,
  RECORD,
  RECORD_ALIGN,
  STATE_CLAIMED,
  STATE_PADDING,
  STATE_RELEASED,
} from './ring-layout.js';
import { asyncWait, type WaitOutcome, type WaitStrategy } from './wait-strategy.js';

/**
 * The multi-producer byte ring and its protocol. No I/O, no allocation on the claim/publish path.
 *
 *  producers (any thread)          CRC pool (pool mode)        writer thread            producer
 *  ───────────────────────         ────────────────────        ─────────────            ────────
 *  c = load(claimCursor)
 *  r = load(releasedCursor)
 *  room? (c + need) - r <= size
 *  CAS claimCursor c → c+need ─┐
 *  [pad record if at the end]   │
 *  plain writes of the body     │
 *  store(state, PUBLISHED) ─────┼──► scan PUBLISHED in a range,
 *   or VALID when crc 'inline' ─┼─┐  crc32 per event,
 *  wake dispatcher if it waits  │ │  store(state, VALID|REJECTED)
 *                               │ └─► wake writer if it waits ─► scan VALID|REJECTED in ring
 *                               │                               order, append (group commit),
 *                               │                               write results, store(state,
 *                               │                               COMMITTED|FAILED), store
 *                               │                               committedCursor, notify if ─────► read result
 *                               │                               completionWaiters > 0; one        store(state, RELEASED)
 *                               │                               message per cycle to main
 *                               │                               reclaim: over RELEASED and    ◄── wake writer if a
 *                               │                               PADDING records below the         producer waits for
 *                               └────────── room again ◄─────── committedCursor: zero them,       space
 *                                                               store releasedCursor, notify
 *
 * Cursors are byte counters held in Int32 words. They only grow and wrap at 2^32; a byte's place in
 * the ring is `cursor & mask`. Differences are taken with wrapping subtraction (`(a - b) | 0` or
 * `>>> 0`), exact because no two live cursors are ever more than ringBytes (≤ 2^30) apart.
 *
 * Free ring bytes are always zero (the writer zeroes what it reclaims), so the state word at a spot
 * where a producer has claimed but not yet written reads STATE_FREE: consumers stop there. A record
 * never straddles the end of the ring: the claim that would cross it also claims the tail as a
 * PADDING record. Publication is a single Atomics.store of the state word after plain writes of the
 * body; a consumer reads the body only after an Atomics.load that saw the published state.
 * Consumers never read at or past claimCursor: when the ring is exactly full, the bytes there are
 * the oldest record (released, maybe PADDING, not yet reclaimed), not a new one.
 *
 * This class is the one owner of the protocol: every read and write of a control word, every state
 * transition, notify and wait of every party goes through its methods; the other modules of the
 * pipeline (producer, CRC stage, writer loop, the store's main thread) call them by role.
 *
 * Waits: each wait names its WaitStrategy (wait-strategy.ts) and is bounded; the main thread only
 * uses 'async'. A party notifies only when the other side announced that it waits (writerWaiting,
 * dispatchWaiting, spaceWaiters, completionWaiters), so the common, busy case costs no wake-up.
 * Each announcement is made before the waiter's last check for work, and each waker publishes
 * before it reads the announcement, so either the waker notifies or the waiter sees the work.
 */
export class Ring {
  readonly sab: SharedArrayBuffer;
  readonly ringBytes: number;
  readonly mask: number;
  /** Int32 view of the whole SharedArrayBuffer: control words and record state words. */
  readonly words: Int32Array;
  /** Byte view of the whole SharedArrayBuffer; records are addressed by absolute byte index. */
  readonly bytes: Uint8Array;
  readonly view: DataView;
  /**
   * 8-byte view of the whole SharedArrayBuffer, for zeroing reclaimed records: a fill of a shared
   * Uint8Array stores one byte at a time, of a Float64Array eight (records and the ring's base are
   * 8-aligned, and +0 is eight zero bytes).
   */
  readonly #eightBytes: Float64Array;
  /** Absolute byte index where the ring starts. */
  readonly base = CONTROL_BYTES;
  /** The ring cursor of the record the last successful tryClaim on this object returned. */
  lastClaimCursor = 0;

  private constructor(sab: SharedArrayBuffer) {
    this.sab = sab;
    this.words = new Int32Array(sab);
    this.bytes = new Uint8Array(sab);
    this.view = new DataView(sab);
    this.#eightBytes = new Float64Array(sab);
    if (this.words[CONTROL.layout] !== LAYOUT_MAGIC) throw new Error('not a ringstore ring buffer');
    this.ringBytes = this.words[LAYOUT_RING_BYTES_WORD]!;
    this.mask = this.ringBytes - 1;
  }

  /**
   * Allocates a ring of `ringBytes` (a power of two). `initialCursor` lets tests start every
   * counter near a wrap point (2^31, 2^32); it must be a multiple of 8.
   */
  static create(ringBytes: number, initialCursor = 0): Ring {
    if (!isPowerOfTwo(ringBytes) || ringBytes < MIN_RING_BYTES || ringBytes > MAX_RING_BYTES) {
      throw new RangeError(`ringBytes must be a power of two from ${MIN_RING_BYTES} to ${MAX_RING_BYTES}`);
    }
    if (initialCursor % RECORD_ALIGN !== 0) throw new RangeError('initialCursor must be 8-aligned');
    const sab = new SharedArrayBuffer(CONTROL_BYTES + ringBytes);
    const words = new Int32Array(sab);
    words[CONTROL.layout] = LAYOUT_MAGIC;
    words[LAYOUT_RING_BYTES_WORD] = ringBytes;
    const start = initialCursor | 0;
    words[CONTROL.claimCursor] = start;
    words[CONTROL.committedCursor] = start;
    words[CONTROL.releasedCursor] = start;
    return new Ring(sab);
  }

  /** Attaches to a ring created in another thread. */
  static attach(sab: SharedArrayBuffer): Ring {
    return new Ring(sab);
  }

  /** The largest record this ring accepts (see maxRecordBytes). */
  get maxRecordBytes(): number {
    return maxRecordBytes(this.ringBytes);
  }

  // ── cursors and shared reads ───────────────────────────────────────────────────────────────

  /** Where the next record will be claimed; nothing at or past it may be read. */
  claimCursor(): number {
    return Atomics.load(this.words, CONTROL.claimCursor);
  }

  /** Every record before it has its final state (committed or failed). */
  committedCursor(): number {
    return Atomics.load(this.words, CONTROL.committedCursor);
  }

  /** Every byte before it is free (zeroed) and may be claimed again. */
  releasedCursor(): number {
    return Atomics.load(this.words, CONTROL.releasedCursor);
  }

  /** Bytes between the reclaim point and the claim point: in use (claimed and not reclaimed). */
  usedBytes(): number {
    return Math.min((this.claimCursor() - this.releasedCursor()) >>> 0, this.ringBytes);
  }

  /** The ERROR_CODES index the store failed with (0 while it has not failed). */
  failureCode(): number {
    return Atomics.load(this.words, CONTROL.failureCode);
  }

  // ── producers ──────────────────────────────────────────────────────────────────────────────

  /**
   * Claims `recordBytes` (8-aligned, ≤ maxRecordBytes) and returns the absolute byte index of the
   * record, its state set to CLAIMED; or -1 when the ring has no room now.
   */
  tryClaim(recordBytes: number): number {
    const words = this.words;
    for (;;) {
      const claim = Atomics.load(words, CONTROL.claimCursor);
      const released = Atomics.load(words, CONTROL.releasedCursor);
      const offset = claim & this.mask;
      const tail = this.ringBytes - offset;
      const padding = recordBytes > tail ? tail : 0;
      const need = padding + recordBytes;
      if (((claim - released) >>> 0) + need > this.ringBytes) return -1;
      if (Atomics.compareExchange(words, CONTROL.claimCursor, claim, (claim + need) | 0) !== claim) continue;
      let record = this.base + offset;
      if (padding > 0) {
        this.view.setUint32(record + RECORD.recordBytes, padding, true);
        Atomics.store(words, record >> 2, STATE_PADDING);
        record = this.base;
      }
      this.lastClaimCursor = (claim + padding) | 0;
      this.view.setUint32(record + RECORD.recordBytes, recordBytes, true);
      Atomics.store(words, record >> 2, STATE_CLAIMED);
      return record;
    }
  }

  /** Makes a record's new state visible (PUBLISHED, VALID, …): one Atomics.store. */
  setState(record: number, state: number): void {
    Atomics.store(this.words, record >> 2, state);
  }

  state(record: number): number {
    return Atomics.load(this.words, record >> 2);
  }

  recordBytes(record: number): number {
    return this.view.getUint32(record + RECORD.recordBytes, true);
  }

  /** The producer has read its result: the writer may reclaim the record. */
  markReleased(record: number): void {
    Atomics.store(this.words, record >> 2, STATE_RELEASED);
  }

  /** After a run of markReleased: wake the writer to reclaim, but only if a producer waits for room. */
  afterReleases(): void {
    if (Atomics.load(this.words, CONTROL.spaceWaiters) > 0) this.wakeWriter();
  }

  /**
   * Wakes the writer thread if (and only if) it announced that it waits. The first waker takes the
   * announcement back (1 → 0), so a burst of publishes costs one notify, not one each.
   */
  wakeWriter(): void {
    if (
      Atomics.load(this.words, CONTROL.writerWaiting) !== 0 &&
      Atomics.compareExchange(this.words, CONTROL.writerWaiting, 1, 0) === 1
    ) {
      Atomics.add(this.words, CONTROL.writerWake, 1);
      Atomics.notify(this.words, CONTROL.writerWake, 1);
    }
  }

  /** Wakes the CRC dispatcher (main thread) if it waits for published records; one notify per wait. */
  wakeDispatcher(): void {
    if (
      Atomics.load(this.words, CONTROL.dispatchWaiting) !== 0 &&
      Atomics.compareExchange(this.words, CONTROL.dispatchWaiting, 1, 0) === 1
    ) {
      Atomics.add(this.words, CONTROL.dispatchWake, 1);
      Atomics.notify(this.words, CONTROL.dispatchWake);
    }
  }

  /**
   * Announces a producer that waits for room and returns the releasedCursor value to wait on.
   * Pair with endSpaceWait. The writer is woken so that it reclaims what producers released.
   */
  beginSpaceWait(): number {
    Atomics.add(this.words, CONTROL.spaceWaiters, 1);
    const released = Atomics.load(this.words, CONTROL.releasedCursor);
    this.wakeWriter();
    return released;
  }

  endSpaceWait(): void {
    Atomics.sub(this.words, CONTROL.spaceWaiters, 1);
  }

  /** Waits (bounded) for releasedCursor to move past `released`, between beginSpaceWait and endSpaceWait. */
  waitForSpace(released: number, timeoutMs: number, strategy: WaitStrategy = asyncWait) {
    return strategy.wait(this.words, CONTROL.releasedCursor, released, timeoutMs);
  }

  /**
   * Waits (bounded) for committedCursor to move past `seen`. The wait is announced in
   * completionWaiters before the strategy checks the word, so the writer (which stores the cursor,
   * then reads the count) either notifies or the wait sees the new cursor at once.
   */
  waitForCommits(seen: number, timeoutMs: number, strategy: WaitStrategy = asyncWait) {
    const words = this.words;
    Atomics.add(words, CONTROL.completionWaiters, 1);
    const outcome = strategy.wait(words, CONTROL.committedCursor, seen, timeoutMs);
    if (typeof outcome === 'string') {
      Atomics.sub(words, CONTROL.completionWaiters, 1);
      return outcome;
    }
    return outcome.then(this.#endCompletionWait);
  }

  readonly #endCompletionWait = (outcome: WaitOutcome): WaitOutcome => {
    Atomics.sub(this.words, CONTROL.completionWaiters, 1);
    return outcome;
  };

  // ── CRC dispatcher (main thread) ─────────────────────────────────────────────────────────────

  /**
   * Announces that the dispatcher waits for producers in other threads to publish, and returns the
   * dispatchWake value to wait on. The dispatcher checks for published records once more after
   * this; pair with endDispatchWait.
   */
  beginDispatchWait(): number {
    const seen = Atomics.load(this.words, CONTROL.dispatchWake);
    Atomics.store(this.words, CONTROL.dispatchWaiting, 1);
    return seen;
  }

  waitForPublish(seen: number, timeoutMs: number, strategy: WaitStrategy = asyncWait) {
    return strategy.wait(this.words, CONTROL.dispatchWake, seen, timeoutMs);
  }

  endDispatchWait(): void {
    Atomics.store(this.words, CONTROL.dispatchWaiting, 0);
  }

  /**
   * Asks the writer thread for a log cut (a backup's) and wakes it; returns the request's number,
   * which the writer's 'cut' message answers (with every request up to it).
   */
  requestCut(): number {
    const request = (Atomics.add(this.words, CONTROL.cutRequests, 1) + 1) | 0;
    this.wakeWriter();
    return request;
  }

  // ── writer thread ─────────────────────────────────────────────────────────────────────────────

  /**
   * Every record before `cursor` has its final state: stores committedCursor and notifies it if
   * producers in other threads announced a wait for their results.
   */
  commitUpTo(cursor: number): void {
    Atomics.store(this.words, CONTROL.committedCursor, cursor);
    if (Atomics.load(this.words, CONTROL.completionWaiters) > 0)
      Atomics.notify(this.words, CONTROL.committedCursor);
  }

  /** True while a producer waits for ring space (the writer should reclaim what was released). */
  spaceWanted(): boolean {
    return Atomics.load(this.words, CONTROL.spaceWaiters) > 0;
  }

  /** Log cuts asked of the writer so far (RingStore.backup); the writer answers each with a message. */
  cutRequests(): number {
    return Atomics.load(this.words, CONTROL.cutRequests);
  }

  /** The main thread asked the writer to finish once everything claimed is committed. */
  stopRequested(): boolean {
    return Atomics.load(this.words, CONTROL.writerStop) !== 0;
  }

  /**
   * Announces that the writer is about to wait and returns the writerWake value to wait on. The
   * writer re-checks for work after this (wakers read the announcement after they publish); pair
   * with endWriterWait.
   */
  beginWriterWait(): number {
    const seen = Atomics.load(this.words, CONTROL.writerWake);
    Atomics.store(this.words, CONTROL.writerWaiting, 1);
    return seen;
  }

  waitForWriterWake(seen: number, timeoutMs: number, strategy: WaitStrategy) {
    return strategy.wait(this.words, CONTROL.writerWake, seen, timeoutMs);
  }

  /**
   * Wakes every waiter queued on writerWake. An async wait that lost a race (the writer went on
   * because something else settled first) stays queued until notified; left there, it would take
   * the next notify (which wakes one waiter) instead of the writer's next wait.
   */
  releaseWriterWaits(): void {
    Atomics.notify(this.words, CONTROL.writerWake);
  }

  endWriterWait(): void {
    Atomics.store(this.words, CONTROL.writerWaiting, 0);
  }

  // ── consumers ──────────────────────────────────────────────────────────────────────────────

  /** The absolute byte index of the record at `cursor`. */
  recordAt(cursor: number): number {
    return this.base + (cursor & this.mask);
  }

  /**
   * Writer thread only: reclaims RELEASED and PADDING records from releasedCursor up to (not past)
   * `limitCursor`, zeroing their bytes (one fill per run of records up to the ring's end) so that
   * free space reads as STATE_FREE. Returns true when room was freed; then producers waiting for
   * room are notified.
   */
  reclaim(limitCursor: number): boolean {
    const words = this.words;
    const start = Atomics.load(words, CONTROL.releasedCursor);
    let released = start;
    let zeroFrom = 0;
    let zeroTo = 0;
    while (((limitCursor - released) | 0) > 0) {
      const record = this.base + (released & this.mask);
      const state = Atomics.load(words, record >> 2);
      if (state !== STATE_RELEASED && state !== STATE_PADDING) break;
      const length = this.view.getUint32(record + RECORD.recordBytes, true);
      if (record !== zeroTo) {
        this.#zero(zeroFrom, zeroTo);
        zeroFrom = record;
      }
      zeroTo = record + length;
      released = (released + length) | 0;
    }
    this.#zero(zeroFrom, zeroTo);
    if (released === start) return false;
    Atomics.store(words, CONTROL.releasedCursor, released);
    if (Atomics.load(words, CONTROL.spaceWaiters) > 0) Atomics.notify(words, CONTROL.releasedCursor);
    return true;
  }

  /** Zeroes the bytes [from, to) of adjacent reclaimed records (both 8-aligned) in one fill. */
  #zero(from: number, to: number): void {
    if (to > from) this.#eightBytes.fill(0, from >> 3, to >> 3);
  }

  // ── lifecycle ──────────────────────────────────────────────────────────────────────────────

  lifecycle(): number {
    return Atomics.load(this.words, CONTROL.lifecycle);
  }

  /** OPEN → CLOSING; returns false if the ring was not open. */
  beginClosing(): boolean {
    return (
      Atomics.compareExchange(this.words, CONTROL.lifecycle, LIFECYCLE_OPEN, LIFECYCLE_CLOSING) ===
      LIFECYCLE_OPEN
    );
  }

  /**
   * Enters the FAILED state (from OPEN or CLOSING) with `failureCode` (an ERROR_CODES index) and wakes
   * every party that might be blocked, so that each learns why. Returns false if already failed.
   */
  fail(failureCode: number): boolean {
    const words = this.words;
    for (;;) {
      const current = Atomics.load(words, CONTROL.lifecycle);
      if (current === LIFECYCLE_FAILED) return false;
      if (Atomics.load(words, CONTROL.failureCode) === 0)
        Atomics.store(words, CONTROL.failureCode, failureCode);
      if (Atomics.compareExchange(words, CONTROL.lifecycle, current, LIFECYCLE_FAILED) === current) break;
    }
    this.wakeEveryone();
    return true;
  }

  /** Main thread: asks the writer to finish once everything claimed is committed, and wakes it. */
  requestWriterStop(): void {
    Atomics.store(this.words, CONTROL.writerStop, 1);
    Atomics.add(this.words, CONTROL.writerWake, 1);
    Atomics.notify(this.words, CONTROL.writerWake);
  }

  /** Sets a lifecycle state unconditionally (CLOSED at the end of close()). */
  setLifecycle(state: number): void {
    Atomics.store(this.words, CONTROL.lifecycle, state);
    this.wakeEveryone();
  }

  /** Wakes all waiters of every notify word, e.g. after a lifecycle change. */
  wakeEveryone(): void {
    const words = this.words;
    for (const word of [
      CONTROL.writerWake,
      CONTROL.dispatchWake,
      CONTROL.committedCursor,
      CONTROL.releasedCursor,
    ]) {
      if (word === CONTROL.writerWake || word === CONTROL.dispatchWake) Atomics.add(words, word, 1);
      Atomics.notify(words, word);
    }
  }
}
