import { describe, expect, it } from 'vitest';
import { NameCache } from '../../src/model/name-cache.js';
import { mulberry32 } from '../support/prng.js';

const bytesOf = (text: string) => new TextEncoder().encode(text);

describe('NameCache', () => {
  it('returns the same string object for the same bytes, wherever they sit', () => {
    const cache = new NameCache();
    const first = cache.decode(bytesOf('xxOpenedyy'), 2, 6);
    const second = cache.decode(bytesOf('Opened'), 0, 6);
    expect(first).toBe('Opened');
    expect(second).toBe(first);
  });

  it('keeps a copy of the bytes it saw: a buffer reused afterwards never changes an answer', () => {
    // A name of six letters that falls in the same slot as 'Opened' (FNV-1a, 1024 slots).
    const slot = (text: string) => {
      let hash = 0x811c9dc5;
      for (const byte of bytesOf(text)) hash = Math.imul(hash ^ byte, 0x01000193);
      return (hash >>> 0) & 1023;
    };
    let other = '';
    for (let n = 0; other === ''; n++) {
      const candidate = n.toString(36).padStart(6, 'q');
      if (candidate !== 'Opened' && slot(candidate) === slot('Opened')) other = candidate;
    }
    const cache = new NameCache();
    // A Buffer, whose slice() is a view: the cache must copy, or refilling it changes its entry.
    const buffer = Buffer.from('Opened');
    expect(cache.decode(buffer, 0, 6)).toBe('Opened');
    buffer.write(other);
    expect(cache.decode(bytesOf(other), 0, 6)).toBe(other);
    expect(cache.decode(bytesOf('Opened'), 0, 6)).toBe('Opened');
  });

  it("decodes through the decoder it was given as Buffer's toString does, for 3,000 random names each seen twice (seeded)", () => {
    const seed = Number(process.env.RINGSTORE_SEED ?? 20261202);
    const random = mulberry32(seed);
    const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });
    const cache = new NameCache((bytes) => utf8.decode(bytes));
    const alphabet = ['a', 'b', 'é', '字', '😀', '\uFEFF', '-', '1'];
    // Up to 40 characters: past the 64 and 128 bytes where the scanner stops using the cache.
    const names = Array.from({ length: 3000 }, () =>
      Array.from({ length: 1 + Math.floor(random() * 40) }, () => alphabet[Math.floor(random() * 8)]).join(
        '',
      ),
    );
    for (const name of [...names, ...names]) {
      const body = Buffer.from(`"${name}"`);
      expect(cache.decode(body, 1, body.length - 2), `seed ${seed}`).toBe(
        body.toString('utf8', 1, body.length - 1),
      );
    }
  });
});
