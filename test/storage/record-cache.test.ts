import { describe, expect, it } from 'vitest';
import { RecordCache } from '../../src/storage/record-cache.js';

describe('RecordCache', () => {
  it('keeps records of different files apart, counts hits and misses, evicts the least recently used past its bound', () => {
    // Each entry costs its bytes plus 160 of overhead: three 40-byte records fit in 600 bytes.
    const cache = new RecordCache(600);
    const a = cache.newFileKey();
    const b = cache.newFileKey();
    const record = (fill: number) => new Uint8Array(40).fill(fill);
    cache.set(a, 0, record(1));
    cache.set(b, 0, record(2));
    expect(cache.get(a, 0)?.[0]).toBe(1);
    expect(cache.get(b, 0)?.[0]).toBe(2);
    cache.set(a, 80, record(3));
    // Touch (a, 0) so that (b, 0) is the least recently used when a fourth record arrives.
    cache.get(a, 0);
    cache.set(b, 80, record(4));
    expect(cache.get(b, 0)).toBeUndefined();
    expect(cache.get(a, 0)?.[0]).toBe(1);
    expect(cache.get(a, 80)?.[0]).toBe(3);
    expect(cache.get(b, 80)?.[0]).toBe(4);
    expect(cache.stats()).toEqual({ capacityBytes: 600, bytes: 3 * 200, hits: 6, misses: 1 });
  });

  it('caches nothing larger than its bound, and nothing past 1 TiB offsets', () => {
    const cache = new RecordCache(300);
    const file = cache.newFileKey();
    cache.set(file, 0, new Uint8Array(200));
    cache.set(file, 2 ** 40, new Uint8Array(10));
    expect(cache.get(file, 0)).toBeUndefined();
    expect(cache.get(file, 2 ** 40)).toBeUndefined();
    expect(cache.stats().bytes).toBe(0);
  });
});
