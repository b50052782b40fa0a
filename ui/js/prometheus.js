/**
 * The Prometheus text format, as much as the console needs: samples by metric name, each with its
 * labels and value. `# HELP` / `# TYPE` lines and timestamps are ignored.
 */
export function parsePrometheus(text) {
  const samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = {};
    for (const pair of (match[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]] = pair[2];
    }
    const list = samples.get(match[1]) ?? [];
    list.push({ labels, value: Number(match[4]) });
    samples.set(match[1], list);
  }
  return samples;
}

/** The value of an unlabelled metric (or its first sample), or undefined when absent. */
export function sampleValue(samples, name) {
  return samples.get(name)?.[0]?.value;
}

/** A histogram's cumulative buckets, sorted by bound: [{ le, count }]. */
export function bucketsOf(samples, name) {
  return (samples.get(`${name}_bucket`) ?? [])
    .map((s) => ({
      le: s.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.labels.le),
      count: s.value,
    }))
    .sort((a, b) => a.le - b.le);
}

/**
 * The q-quantile of the observations between two scrapes of a histogram (cumulative buckets of
 * the same bounds), interpolated within its bucket as Prometheus' histogram_quantile does;
 * undefined when nothing was observed in between.
 */
export function quantileBetween(before, after, q) {
  const deltas = after.map((b, i) => ({ le: b.le, count: b.count - (before[i]?.count ?? 0) }));
  const total = deltas.at(-1)?.count ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const bucket of deltas) {
    if (bucket.count >= rank) {
      if (!Number.isFinite(bucket.le)) return lower;
      const inBucket = bucket.count - below;
      return inBucket <= 0 ? bucket.le : lower + ((bucket.le - lower) * (rank - below)) / inBucket;
    }
    lower = bucket.le;
    below = bucket.count;
  }
  return lower;
}
