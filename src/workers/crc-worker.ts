import { workerData } from 'piscina';
import { type CrcTask, type CrcTaskResult, checkCrcRange } from '../pipeline/crc-stage.js';
import { Ring } from '../pipeline/ring.js';
import type { CrcWorkerData } from './crc-worker-data.js';

/**
 * A CRC pool thread (piscina). The ring's SharedArrayBuffer arrives once, in workerData; each task
 * names a range of ring cursors (see src/pipeline/crc-stage.ts) and the result is two counts.
 */
const ring = Ring.attach((workerData as CrcWorkerData).sab);

export default function checkRange(task: CrcTask): CrcTaskResult {
  const result: CrcTaskResult = { valid: 0, rejected: 0 };
  checkCrcRange(ring, task, result);
  return result;
}
