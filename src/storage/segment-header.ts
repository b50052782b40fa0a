import { crc32 } from '../model/crc.js';
import { SEGMENT_MAGIC } from './format.js';

/**
 * The header at the start of every data segment file (docs/FORMAT.md, "Data segments"); the
 * batches' payloads follow it, so the first batch of a segment sits at offset SEGMENT_HEADER_BYTES.
 *
 *   0 u32 magic "RSD" 2   4 u32 segment number   8 u16 aggregate-type code   10 u16 reserved (0)
 *   12 u32 CRC-32 of bytes [0, 12)
 */
export const SEGMENT_HEADER_BYTES = 16;

export function encodeSegmentHeader(segment: number, aggregateTypeCode: number): Uint8Array {
  const bytes = new Uint8Array(SEGMENT_HEADER_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, SEGMENT_MAGIC, true);
  view.setUint32(4, segment, true);
  view.setUint16(8, aggregateTypeCode, true);
  view.setUint32(12, crc32(bytes.subarray(0, 12)), true);
  return bytes;
}

/** Undefined when `bytes` hold the header of that segment, else why not. */
export function checkSegmentHeader(
  bytes: Uint8Array,
  segment: number,
  aggregateTypeCode: number,
): string | undefined {
  if (bytes.byteLength < SEGMENT_HEADER_BYTES) return 'segment header missing';
  const view = new DataView(bytes.buffer, bytes.byteOffset, SEGMENT_HEADER_BYTES);
  if (view.getUint32(0, true) !== SEGMENT_MAGIC) return 'segment header magic';
  if (crc32(bytes.subarray(0, 12)) !== view.getUint32(12, true)) return 'segment header crc';
  if (view.getUint32(4, true) !== segment || view.getUint16(8, true) !== aggregateTypeCode) {
    return 'segment header names another segment';
  }
  return undefined;
}
