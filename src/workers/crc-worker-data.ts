import { BODY } from '../pipeline/batch-codec.js';
import { type CrcTask, liveStart } from '../pipeline/crc-stage.js';
import type { Ring } from '../pipeline/ring.js';
import { RECORD_HEADER_BYTES, STATE_PADDING } from '../pipeline/ring-layout.js';

/** What each CRC pool thread receives once, at start-up. */
export interface CrcWorkerData {
  sab: SharedArrayBuffer;
  /**
   * Test hook: the thread exits abruptly (as if it crashed) when a task holds a batch of this domain,
   * so tests can check that only that task's batches fail and the pool replaces the thread.
   */
  crashOnDomain?: string;
}

export function crashesOnTask(data: CrcWorkerData, ring: Ring, task: CrcTask): boolean {
  const poison = data.crashOnDomain;
  if (poison === undefined) return false;
  let cursor = liveStart(ring, task.start);
  while (((task.end - cursor) | 0) > 0) {
    const record = ring.recordAt(cursor);
    cursor = (cursor + ring.recordBytes(record)) | 0;
    if (ring.state(record) === STATE_PADDING) continue;
    const body = record + RECORD_HEADER_BYTES;
    const length = ring.view.getUint8(body + BODY.domainLength);
    const domain = String.fromCharCode(...ring.bytes.subarray(body + BODY.names, body + BODY.names + length));
    if (domain === poison) return true;
  }
  return false;
}
