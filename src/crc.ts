import CRC32 from 'crc-32';

/** CRC-32/IEEE of `data` as an unsigned 32-bit number (the polynomial of crc-32 and zlib.crc32). */
export function crc32(data: Uint8Array, seed?: number): number {
  return CRC32.buf(data, seed) >>> 0;
}
