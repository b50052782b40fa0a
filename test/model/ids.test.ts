import { describe, expect, it } from 'vitest';
import { KeyGenerator, parseAggregateId, type RandomInt, RUN_START_SPAN } from '../../src/model/ids.js';
import { mulberry32 } from '../support/prng.js';

const SEED = Number(process.env.RINGSTORE_SEED ?? 7_001);

/** A seeded RandomInt: the seed is in every assertion message. */
function seededInt(seed: number): RandomInt {
  const random = mulberry32(seed);
  return (min, max) => min + Math.floor(random() * (max - min));
}

const T0 = 1_796_000_000_000; // a millisecond timestamp in 2026

describe(`KeyGenerator (seed ${SEED})`, () => {
  it('is strictly increasing, also within one second and when the clock steps back', () => {
    const keys = new KeyGenerator(seededInt(SEED));
    const clock = [T0, T0, T0 + 999, T0 + 1000, T0 - 60_000, T0 + 5, T0 + 86_400_000, T0];
    let last = 0n;
    for (const now of clock) {
      for (let i = 0; i < 1000; i++) {
        const key = keys.next(now);
        expect(key > last, `seed ${SEED}`).toBe(true);
        last = key;
      }
    }
  });

  it('puts the second in the high 32 bits and a run from a random start below 2^31 in the low bits', () => {
    const starts: number[] = [];
    const keys = new KeyGenerator((min, max) => {
      expect([min, max]).toEqual([1, RUN_START_SPAN + 1]);
      starts.push(12_345 + starts.length);
      return starts.at(-1) as number;
    });
    const first = keys.next(T0);
    const second = keys.next(T0 + 10);
    const nextSecond = keys.next(T0 + 1000);
    expect(first >> 32n).toBe(BigInt(Math.floor(T0 / 1000)));
    expect(first & 0xffff_ffffn).toBe(12_345n);
    expect(second).toBe(first + 1n);
    expect(nextSecond >> 32n).toBe(BigInt(Math.floor(T0 / 1000) + 1));
    expect(nextSecond & 0xffff_ffffn).toBe(12_346n);
  });

  it('moves on to the next second when a run reaches the top of the low 32 bits', () => {
    const keys = new KeyGenerator(() => 0xffff_fffe);
    const a = keys.next(T0);
    const b = keys.next(T0);
    const c = keys.next(T0);
    expect(b).toBe(a + 1n);
    expect(c >> 32n).toBe((a >> 32n) + 1n);
    expect(c > b).toBe(true);
  });

  it('orders ids of different seconds by time, across generators', () => {
    const early = new KeyGenerator(seededInt(SEED));
    const late = new KeyGenerator(seededInt(SEED + 1));
    for (let i = 0; i < 200; i++) {
      const now = T0 + i * 1000;
      expect(early.next(now + 999) < late.next(now + 1000), `seed ${SEED}, second ${i}`).toBe(true);
    }
  });

  it('makes valid ids, all above the previous layout (ms << 20 | 20 bits) for the same time', () => {
    const keys = new KeyGenerator(seededInt(SEED));
    for (const now of [1_600_000_000_000, T0, 4_000_000_000_000, 4_294_967_295_999]) {
      const key = keys.next(now);
      expect(parseAggregateId(key)).toBe(key);
      expect(key > (BigInt(now) << 20n) + (1n << 20n)).toBe(true);
    }
  });

  it('independent generators in the same second do not collide (seeded starts)', () => {
    const generators = Array.from({ length: 50 }, (_, i) => new KeyGenerator(seededInt(SEED * 100 + i)));
    const seen = new Set<bigint>();
    for (const keys of generators) for (let i = 0; i < 2000; i++) seen.add(keys.next(T0));
    expect(seen.size, `seed ${SEED}`).toBe(50 * 2000);
  });

  it('two generators collide only where their runs overlap, as the bound assumes', () => {
    const at = (start: number) => new KeyGenerator(() => start);
    const ids = (keys: KeyGenerator, count: number) => Array.from({ length: count }, () => keys.next(T0));
    const apart = new Set([...ids(at(1000), 100), ...ids(at(1100), 100)]);
    expect(apart.size).toBe(200);
    const overlapping = new Set([...ids(at(1000), 100), ...ids(at(1090), 100)]);
    expect(overlapping.size).toBe(190);
  });
});
