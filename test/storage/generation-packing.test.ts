import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_GENERATION_BYTES } from '../../src/model/limits.js';
import { packGenerations } from '../../src/storage/generation-packing.js';

const SEED = Number(process.env.RINGSTORE_SEED ?? 4096);

function generations(sizes: number[], ends: number[]): number[][] {
  const out: number[][] = [];
  let start = 0;
  for (const end of ends) {
    out.push(sizes.slice(start, end));
    start = end;
  }
  return out;
}

describe('packGenerations', () => {
  it('cuts at batch boundaries with the default 4096-byte limit', () => {
    expect(DEFAULT_GENERATION_BYTES).toBe(4096);
    expect(packGenerations([1000, 1000, 1000, 1000, 96, 1])).toEqual([5, 6]);
    expect(packGenerations([4096, 1])).toEqual([1, 2]);
    expect(packGenerations([])).toEqual([]);
  });

  it('puts an oversized batch in a generation of its own', () => {
    expect(packGenerations([10, 5000, 10], 4096)).toEqual([1, 2, 3]);
    expect(packGenerations([5000], 4096)).toEqual([1]);
    expect(packGenerations([5000, 6000], 4096)).toEqual([1, 2]);
  });

  it('reuses the output array and honours count', () => {
    const out = [99, 98, 97];
    expect(packGenerations([3, 3, 3, 3], 6, 3, out)).toBe(out);
    expect(out).toEqual([2, 3]);
  });

  it('rejects a non-positive limit', () => {
    expect(() => packGenerations([1], 0)).toThrow(RangeError);
  });

  it('property: order kept, limits kept, greedy (no generation could take the next batch)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 9000 }), { maxLength: 200 }),
        fc.integer({ min: 1, max: 8192 }),
        (sizes, limit) => {
          const ends = packGenerations(sizes, limit);
          const gens = generations(sizes, ends);
          expect(gens.flat()).toEqual(sizes);
          for (let g = 0; g < gens.length; g++) {
            const gen = gens[g]!;
            const total = gen.reduce((a, b) => a + b, 0);
            expect(gen.length).toBeGreaterThan(0);
            if (gen.length > 1) expect(total).toBeLessThanOrEqual(limit);
            const next = gens[g + 1]?.[0];
            if (next !== undefined) expect(total + next).toBeGreaterThan(limit);
          }
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });
});
