/**
 * The memory layout of the write ring: one SharedArrayBuffer holding a control block of Int32 words
 * followed by the byte ring itself. Every party (producers in any thread, the CRC pool, the writer
 * thread, the main thread) imports these names; nobody uses a bare index.
 *
 *   SharedArrayBuffer
 *   ┌──────────────── control block: CONTROL_LINES lines of 64 bytes ────────────────┐┌─ ring ─ … ─┐
 *   │ line 0: layout (written once) │ line 1: claimCursor │ line 2: committedCursor │ … ││ records   │
 *   └────────────────────────────────────────────────────────────────────────────────┘└───────────┘
 *
 * Each control word sits alone at the start of its own 64-byte line so that the roles that write
 * different words never contend for one cache line (false sharing). A record starts on an 8-byte
 * boundary and begins with RECORD_HEADER_BYTES of header (state word, length, and the result fields
 * that the writer thread fills in); its body (the encoded batch, see batch-codec.ts) follows.
 */

/** Bytes per control line: one cache line. */
export const CACHE_LINE_BYTES = 64;
const WORDS_PER_LINE = CACHE_LINE_BYTES / 4;

/** Lines of the control block, in order. The comment names the role that writes each word. */
const LINES = [
  /** written once at creation: LAYOUT_MAGIC, ringBytes */
  'layout',
  /** producers (compareExchange): where the next record is claimed */
  'claimCursor',
  /** writer thread: every record before it has its final result (committed or failed) */
  'committedCursor',
  /** writer thread: every byte before it is free (zeroed) and may be claimed again */
  'releasedCursor',
  /** main thread and writer thread (compareExchange): LIFECYCLE_* */
  'lifecycle',
  /** whoever fails the store, once, before lifecycle becomes FAILED: an index into ERROR_CODES */
  'failureCode',
  /** notify word: bumped by whoever hands the writer work while it waits */
  'writerWake',
  /** writer thread: 1 while it is (about to be) blocked in Atomics.wait on writerWake */
  'writerWaiting',
  /** notify word: bumped by producers in other threads when the CRC dispatcher waits */
  'dispatchWake',
  /** main thread (CRC dispatcher): 1 while it waits for newly published records */
  'dispatchWaiting',
  /** producers (add/sub): how many producers wait for ring space to be released */
  'spaceWaiters',
  /** main thread: 1 asks the writer thread to finish once everything claimed is committed */
  'writerStop',
  /** producers in other threads (add/sub): how many wait on committedCursor for their results */
  'completionWaiters',
  /** main thread (add): log cuts asked of the writer thread (RingStore.backup); each gets a 'cut' message */
  'cutRequests',
] as const;

export type ControlWord = (typeof LINES)[number];

/** Int32 index of each control word in an Int32Array over the whole SharedArrayBuffer. */
export const CONTROL = Object.freeze(
  Object.fromEntries(LINES.map((name, line) => [name, line * WORDS_PER_LINE])) as Record<ControlWord, number>,
);

/** Int32 index of ringBytes in the layout line (the magic is at CONTROL.layout). */
export const LAYOUT_RING_BYTES_WORD = CONTROL.layout + 1;
export const LAYOUT_MAGIC = 0x52494e47; // 'RING'

/** Control block size in bytes; the ring starts right after it, 64-byte aligned. */
export const CONTROL_BYTES = LINES.length * CACHE_LINE_BYTES;

export const LIFECYCLE_OPEN = 0;
export const LIFECYCLE_CLOSING = 1;
export const LIFECYCLE_FAILED = 2;
export const LIFECYCLE_CLOSED = 3;

/**
 * The state word of a record. Zero is what free (released, zeroed) ring bytes read as, so a record
 * whose header a producer has not written yet is never mistaken for a published one.
 *
 *   FREE ─claim→ CLAIMED ─publish→ PUBLISHED ─crc→ VALID ──writer→ COMMITTED ─producer→ RELEASED
 *                    │  (crc: 'inline')  └──────→ REJECTED ─writer→ FAILED ──producer→ RELEASED
 *                    └─ publish(VALID) ─────────────┘            (VALID ─writer→ FAILED too)
 *   PADDING: fills the tail of the ring when a record would straddle its end; skipped by all.
 */
export const STATE_FREE = 0;
export const STATE_CLAIMED = 1;
export const STATE_PUBLISHED = 2;
export const STATE_VALID = 3;
export const STATE_REJECTED = 4;
export const STATE_COMMITTED = 5;
export const STATE_FAILED = 6;
export const STATE_RELEASED = 7;
export const STATE_PADDING = 8;

/** Record header fields: byte offsets from the record start. Results are written by the writer. */
export const RECORD = Object.freeze({
  /** Int32, atomic: STATE_* */
  state: 0,
  /** Uint32: bytes of the whole record including header and alignment padding */
  recordBytes: 4,
  /** Int32: 0 = success, else 1 + index into ERROR_CODES */
  errorCode: 8,
  /** Int32: for CRC_MISMATCH the event index; otherwise 0 */
  errorDetail: 12,
  /** Uint8: 1 when an idempotency key matched an earlier put */
  replayed: 16,
  /** Uint8: 0 none, 1 write, 2 fsync (the durability level reached) */
  durability: 17,
  /** Float64 result fields */
  firstVersion: 24,
  lastVersion: 32,
  firstPosition: 40,
  generation: 48,
  timestamp: 56,
  /** Float64: the instance's version when the result is VERSION_CONFLICT */
  actualVersion: 64,
});

export const RECORD_HEADER_BYTES = 72;
/** Records start on 8-byte boundaries (Float64 fields, Int32 atomics). */
export const RECORD_ALIGN = 8;

export const MIN_RING_BYTES = 1024;
/** Keeps every cursor difference far below 2^31, so wrapping Int32 arithmetic stays exact. */
export const MAX_RING_BYTES = 1 << 30;
export const DEFAULT_RING_BYTES = 16 * 1024 * 1024;

export function alignRecord(bytes: number): number {
  return (bytes + RECORD_ALIGN - 1) & ~(RECORD_ALIGN - 1);
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/**
 * The largest record that always fits: in an empty ring a record fits either before the end or,
 * after padding, at the start, and one of the two spans is at least half the ring.
 */
export function maxRecordBytes(ringBytes: number): number {
  return ringBytes / 2;
}
