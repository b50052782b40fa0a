/** Upper bounds (seconds) of the latency histograms' buckets: 0.5 ms … 2.5 s. */
export const DURATION_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];

/**
 * A fixed-bucket histogram of durations in seconds, in plain numbers (no allocation per
 * observation), in the shape Prometheus histograms are exported in: per-bucket counts, a sum and a
 * count. `counts` are per bucket, not cumulative; the last slot holds what is above every bound.
 */
export class DurationHistogram {
  readonly bounds: readonly number[];
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[] = DURATION_BUCKETS) {
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(seconds: number): void {
    const bounds = this.bounds;
    let bucket = 0;
    while (bucket < bounds.length && seconds > (bounds[bucket] as number)) bucket++;
    this.counts[bucket] = (this.counts[bucket] as number) + 1;
    this.sum += seconds;
    this.count++;
  }

  /** A copy that later observations do not change. */
  snapshot(): DurationHistogramSnapshot {
    return { bounds: this.bounds, counts: Array.from(this.counts), sum: this.sum, count: this.count };
  }
}

export interface DurationHistogramSnapshot {
  bounds: readonly number[];
  counts: number[];
  sum: number;
  count: number;
}
