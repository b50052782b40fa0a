import { checkRecordCrcs } from './batch-codec.js';
import { writeRejection } from './record-results.js';
import type { Ring } from './ring.js';
import { STATE_PADDING, STATE_PUBLISHED, STATE_REJECTED, STATE_VALID } from './ring-layout.js';

/**
 * The CRC stage of the pipeline (pool mode). The dispatcher on the main thread hands the pool
 * RANGES of ring cursors covering runs of published records, never single events, so one piscina
 * round trip is spread over every batch published since the last one.
 *
 *   main thread (CrcDispatcher)                  pool worker (checkCrcRange)
 *   scan PUBLISHED/PADDING from its cursor ──task {start, end}──► for each PUBLISHED record:
 *   (1 task per pool thread in flight, 4            crc32 per event, compare with supplied,
 *    when producers hand on slices; what            write computed CRCs, store VALID|REJECTED
 *    arrives meanwhile forms the next,              then wake the writer once, if it waits
 *    larger range)
 *   task settled ◄────────────────────────────────
 *   (rejected: the worker died — its records still PUBLISHED become REJECTED/INTERNAL)
 */
export interface CrcTask {
  /** Ring cursor of the first record of the range. */
  start: number;
  /** Ring cursor just past the last record of the range. */
  end: number;
}

export interface CrcTaskResult {
  valid: number;
  rejected: number;
}

/**
 * Where the live part of a task's range starts. The writer passes PADDING records on its own and
 * reclaims (zeroes) them, so the part of a range behind committedCursor may already be gone; it
 * held nothing but padding, since every other record waits for this stage.
 */
export function liveStart(ring: Ring, start: number): number {
  const committed = ring.committedCursor();
  return ((committed - start) | 0) > 0 ? committed : start;
}

/** Checks every published record in [start, end) and marks it VALID or REJECTED. */
export function checkCrcRange(ring: Ring, task: CrcTask, result: CrcTaskResult): void {
  const { bytes, view } = ring;
  let cursor = liveStart(ring, task.start);
  while (((task.end - cursor) | 0) > 0) {
    const record = ring.recordAt(cursor);
    const state = ring.state(record);
    if (state === STATE_PUBLISHED) {
      const mismatch = checkRecordCrcs(bytes, view, record);
      if (mismatch < 0) {
        ring.setState(record, STATE_VALID);
        result.valid++;
      } else {
        writeRejection(view, record, 'CRC_MISMATCH', mismatch);
        ring.setState(record, STATE_REJECTED);
        result.rejected++;
      }
    } else if (state !== STATE_PADDING) {
      throw new Error(`CRC task [${task.start}, ${task.end}) met a record in state ${state}`);
    }
    cursor = (cursor + ring.recordBytes(record)) | 0;
  }
  ring.wakeWriter();
}

/**
 * Finds the end of the run of PUBLISHED (and PADDING) records starting at `cursor`, stopping before
 * `maxBytes` would be exceeded (a single larger record is still taken whole). `run.published` counts
 * the PUBLISHED records in it (a run of padding alone needs no task).
 */
export function publishedRunEnd(
  ring: Ring,
  cursor: number,
  maxBytes: number,
  run: { published: number },
): number {
  run.published = 0;
  // Never read at or past claimCursor: in a full ring the bytes there belong to the oldest record.
  const claim = ring.claimCursor();
  let end = cursor;
  let taken = 0;
  while (((claim - end) | 0) > 0) {
    const record = ring.recordAt(end);
    const state = ring.state(record);
    if (state !== STATE_PUBLISHED && state !== STATE_PADDING) return end;
    const length = ring.recordBytes(record);
    if (taken > 0 && taken + length > maxBytes) return end;
    taken += length;
    if (state === STATE_PUBLISHED) run.published++;
    end = (end + length) | 0;
  }
  return end;
}

/** After a pool worker died mid-task: every record of its range it had not finished fails. */
export function rejectUnfinished(ring: Ring, task: CrcTask): number {
  let cursor = liveStart(ring, task.start);
  let failed = 0;
  while (((task.end - cursor) | 0) > 0) {
    const record = ring.recordAt(cursor);
    if (ring.state(record) === STATE_PUBLISHED) {
      writeRejection(ring.view, record, 'INTERNAL');
      ring.setState(record, STATE_REJECTED);
      failed++;
    }
    cursor = (cursor + ring.recordBytes(record)) | 0;
  }
  ring.wakeWriter();
  return failed;
}
