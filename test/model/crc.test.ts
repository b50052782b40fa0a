import CRC32 from 'crc-32';
import { describe, expect, it } from 'vitest';
import { crc32, crc32Range, ZLIB_CRC_THRESHOLD_BYTES } from '../../src/model/crc.js';
import { mulberry32 } from '../support/prng.js';

/** The crc-32 package: an independent implementation to check the project's CRC against. */
const reference = (data: Uint8Array, seed?: number): number => CRC32.buf(data, seed) >>> 0;

const SEED = 20261124;

describe('crc32Range / crc32', () => {
  it(`match the crc-32 package for every length around the block size and the zlib threshold (seed ${SEED})`, () => {
    const random = mulberry32(SEED);
    const bytes = new Uint8Array(new SharedArrayBuffer(8192));
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
    const lengths = [
      0,
      1,
      2,
      7,
      8,
      9,
      15,
      16,
      17,
      100,
      ZLIB_CRC_THRESHOLD_BYTES - 1,
      ZLIB_CRC_THRESHOLD_BYTES,
    ];
    for (let n = 0; n < 300; n++) lengths.push(Math.floor(random() * 2048));
    for (const length of lengths) {
      const start = Math.floor(random() * (bytes.length - length));
      const expected = reference(bytes.slice(start, start + length));
      expect(crc32Range(bytes, start, start + length), `seed ${SEED}, length ${length}`).toBe(expected);
      expect(crc32(bytes.slice(start, start + length)), `seed ${SEED}, length ${length}`).toBe(expected);
    }
  });

  it(`continue a CRC from a seed as the crc-32 package does, across the zlib threshold (seed ${SEED})`, () => {
    const random = mulberry32(SEED + 1);
    for (let n = 0; n < 200; n++) {
      const first = new Uint8Array(Math.floor(random() * 2 * ZLIB_CRC_THRESHOLD_BYTES));
      const second = new Uint8Array(Math.floor(random() * 2 * ZLIB_CRC_THRESHOLD_BYTES));
      for (let i = 0; i < first.length; i++) first[i] = Math.floor(random() * 256);
      for (let i = 0; i < second.length; i++) second[i] = Math.floor(random() * 256);
      const joined = new Uint8Array(first.length + second.length);
      joined.set(first);
      joined.set(second, first.length);
      const expected = reference(joined);
      expect(crc32(second, crc32(first)), `seed ${SEED + 1}, round ${n}`).toBe(expected);
      expect(reference(second, reference(first)), `seed ${SEED + 1}, round ${n}`).toBe(expected);
    }
  });

  it('gives the standard check value of CRC-32/IEEE', () => {
    const check = new TextEncoder().encode('123456789');
    expect(crc32(check)).toBe(0xcbf43926);
    expect(crc32Range(check, 0, check.length)).toBe(0xcbf43926);
  });
});
