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
import { waitAsync } from './wait-async.js';

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
 * Waits: worker threads may block in bounded Atomics.wait; the main thread only uses
 * Atomics.waitAsync. A party notifies only when the other side announced it waits (the *Waiting
 * words, spaceWaiters), so the common, busy case costs no wake-up at all.
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
  /** Absolute byte index where the ring starts. */
  readonly base = CONTROL_BYTES;
  /** The ring cursor of the record the last successful tryClaim on this object returned. */
  lastClaimCursor = 0;

  private constructor(sab: SharedArrayBuffer) {
    this.sab = sab;
    this.words = new Int32Array(sab);
    this.bytes = new Uint8Array(sab);
    this.view = new DataView(sab);
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

  load(word: number): number {
    return Atomics.load(this.words, word);
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

  /** Non-blocking wait for room (any thread, the main thread included). */
  waitForSpaceAsync(released: number, timeoutMs: number): Promise<unknown> | undefined {
    const wait = waitAsync(this.words, CONTROL.releasedCursor, released, timeoutMs);
    return wait.async ? wait.value : undefined;
  }

  // ── consumers ──────────────────────────────────────────────────────────────────────────────

  /** The absolute byte index of the record at `cursor`. */
  recordAt(cursor: number): number {
    return this.base + (cursor & this.mask);
  }

  /**
   * Writer thread only: reclaims RELEASED and PADDING records from releasedCursor up to (not past)
   * `limitCursor`, zeroing their bytes so that free space reads as STATE_FREE. Returns true when
   * room was freed; then producers waiting for room are notified.
   */
  reclaim(limitCursor: number): boolean {
    const words = this.words;
    const start = Atomics.load(words, CONTROL.releasedCursor);
    let released = start;
    while (((limitCursor - released) | 0) > 0) {
      const record = this.base + (released & this.mask);
      const state = Atomics.load(words, record >> 2);
      if (state !== STATE_RELEASED && state !== STATE_PADDING) break;
      const length = this.view.getUint32(record + RECORD.recordBytes, true);
      this.bytes.fill(0, record, record + length);
      released = (released + length) | 0;
    }
    if (released === start) return false;
    Atomics.store(words, CONTROL.releasedCursor, released);
    if (Atomics.load(words, CONTROL.spaceWaiters) > 0) Atomics.notify(words, CONTROL.releasedCursor);
    return true;
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
