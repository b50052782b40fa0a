import { describe, expect, it } from 'vitest';
import { DurationHistogram } from '../../src/model/duration-histogram.js';

describe('DurationHistogram', () => {
  it('counts each duration in the first bucket whose bound is not below it, and keeps sum and count', () => {
    const histogram = new DurationHistogram([0.001, 0.01]);
    for (const seconds of [0, 0.001, 0.0011, 0.01, 0.5, 7]) histogram.observe(seconds);
    expect(Array.from(histogram.counts)).toEqual([2, 2, 2]);
    expect(histogram.count).toBe(6);
    expect(histogram.sum).toBeCloseTo(7.5121, 12);
  });

  it('hands out snapshots that later observations leave alone', () => {
    const histogram = new DurationHistogram([1]);
    histogram.observe(0.5);
    const before = histogram.snapshot();
    histogram.observe(2);
    expect(before).toEqual({ bounds: [1], counts: [1, 0], sum: 0.5, count: 1 });
    expect(histogram.snapshot().counts).toEqual([1, 1]);
  });
});
