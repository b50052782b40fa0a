import zlib from 'node:zlib';
import CRC32 from 'crc-32';

/**
 * Below this many bytes the pure-JS slicing-by-16 CRC of the crc-32 package is faster than a call
 * into zlib; above it zlib.crc32 wins. Measured on the project machine (Node 20, x64):
 *   100 B: crc-32 160 ns, zlib 237 ns · 512 B: 398 vs 340 ns · 4 KiB: 2.6 vs 1.0 µs · 64 KiB: 49 vs 13 µs.
 */
export const ZLIB_CRC_THRESHOLD_BYTES = 384;

/** CRC-32/IEEE of bytes[start, end) as an unsigned number, with whichever implementation is faster. */
export function crc32Range(bytes: Uint8Array, start: number, end: number): number {
  const data = bytes.subarray(start, end);
  return end - start < ZLIB_CRC_THRESHOLD_BYTES ? CRC32.buf(data) >>> 0 : zlib.crc32(data);
}

/** CRC-32/IEEE of a whole array (see crc32Range). */
export function crc32Fast(data: Uint8Array): number {
  return data.byteLength < ZLIB_CRC_THRESHOLD_BYTES ? CRC32.buf(data) >>> 0 : zlib.crc32(data);
}
