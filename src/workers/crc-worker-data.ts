/** What each CRC pool thread receives once, at start-up. */
export interface CrcWorkerData {
  sab: SharedArrayBuffer;
}
