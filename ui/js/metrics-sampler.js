import { bucketsOf, parsePrometheus, quantileBetween, sampleValue } from './prometheus.js';

const FSYNC = 'ringstore_store_fsync_duration_seconds';

/** A rate per second between two scrapes of a counter; undefined when either lacks it. */
function rate(before, after, name, seconds) {
  const a = sampleValue(before, name);
  const b = sampleValue(after, name);
  return a === undefined || b === undefined ? undefined : Math.max(0, b - a) / seconds;
}

/**
 * Turns successive /metrics scrapes into one point per interval: appends/s, the fsync latency
 * percentiles of the fsyncs in the interval (ms), ring occupancy (%), backpressure rejections/s.
 * A value the store does not report is undefined (a gap in its chart).
 */
export class MetricsSampler {
  #previous;
  #previousAt;

  /** Adds a scrape taken at `at` (ms); returns the point for the interval since the last one, if any. */
  add(text, at) {
    const samples = parsePrometheus(text);
    const before = this.#previous;
    const seconds = (at - (this.#previousAt ?? at)) / 1000;
    this.#previous = samples;
    this.#previousAt = at;
    const ringBytes = sampleValue(samples, 'ringstore_ring_bytes');
    const ringUsed = sampleValue(samples, 'ringstore_ring_used_bytes');
    const occupancy = ringBytes ? (100 * (ringUsed ?? 0)) / ringBytes : undefined;
    if (!before || seconds <= 0) return undefined;
    const appendedName = samples.has('ringstore_store_appended_events_total')
      ? 'ringstore_store_appended_events_total'
      : 'ringstore_http_appended_events_total';
    const fsyncBefore = bucketsOf(before, FSYNC);
    const fsyncAfter = bucketsOf(samples, FSYNC);
    const fsyncMs = (q) => {
      const seconds = quantileBetween(fsyncBefore, fsyncAfter, q);
      return seconds === undefined ? undefined : seconds * 1000;
    };
    return {
      time: at / 1000,
      appendsPerSecond: rate(before, samples, appendedName, seconds),
      fsyncP50: fsyncMs(0.5),
      fsyncP90: fsyncMs(0.9),
      fsyncP99: fsyncMs(0.99),
      ringOccupancy: occupancy,
      backpressurePerSecond: rate(before, samples, 'ringstore_store_backpressure_total', seconds),
      generation: sampleValue(samples, 'ringstore_generation'),
    };
  }
}
