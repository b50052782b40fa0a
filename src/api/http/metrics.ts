import { Counter, collectDefaultMetrics, Gauge, type Metric, Registry } from 'prom-client';
import { DurationHistogram, type DurationHistogramSnapshot } from '../../model/duration-histogram.js';
import type { CacheStats } from '../../storage/types.js';
import type { EventStore } from '../event-store.js';
import { packageVersion } from '../package-version.js';

/**
 * What a store may report about its internals for /metrics. Every field is optional: a store
 * implements `metrics()` (see MetricsSource) with whatever it can measure, and the HTTP layer exports
 * exactly those. Counts are cumulative since the store opened.
 */
export interface StoreMetrics {
  appendedBatches?: number;
  appendedEvents?: number;
  appendedBytes?: number;
  /** Generations flushed since open (the ringstore_generation gauge counts those of earlier runs too). */
  generations?: number;
  /** Writer commit cycles since open: one storage append and at most one fsync round each. */
  commits?: number;
  fsyncs?: number;
  fsyncSecondsTotal?: number;
  /** Duration of the most recent fsync. */
  fsyncSecondsLast?: number;
  /** Every fsync/fdatasync of the writer since open, by duration. */
  fsyncDurations?: DurationHistogramSnapshot;
  ringBytes?: number;
  ringUsedBytes?: number;
  crcThreads?: number;
  /** Share of CRC pool capacity in use, 0…1. */
  crcUtilization?: number;
  backpressureRejections?: number;
  /** The store's bounded caches (index blocks in bytes, instance states in entries). */
  caches?: readonly StoreCacheMetric[];
  /** A cluster node's view (src/api/cluster, docs/CLUSTER.md "Metrics"). */
  cluster?: ClusterMetrics;
}

/** What a cluster node reports: lease changes and fences since open, and per domain its lag. */
export interface ClusterMetrics {
  leasesTaken: number;
  leasesLost: number;
  fencedPublishes: number;
  forwardedPuts: number;
  domains: readonly { domain: string; applied: number; lag: number; owner: boolean }[];
}

/** One bounded cache of the store (the storage layer's own report of it). */
export type StoreCacheMetric = CacheStats;

type NumericStoreMetric = Exclude<keyof StoreMetrics, 'fsyncDurations' | 'caches' | 'cluster'>;

export interface MetricsSource {
  metrics(): StoreMetrics;
}

export function storeMetricsOf(store: EventStore): StoreMetrics | undefined {
  const candidate = store as Partial<MetricsSource>;
  return typeof candidate.metrics === 'function' ? candidate.metrics() : undefined;
}

/** A counter the store keeps: read when scraped, absent while the store does not report it. */
function mirroredCounter(
  registry: Registry,
  name: string,
  help: string,
  read: () => number | undefined,
): void {
  registry.registerMetric(new MirroredValue('counter', name, help, read) as unknown as Metric);
}

/** A gauge the store keeps: read when scraped, absent while the store does not report it. */
function mirroredGauge(registry: Registry, name: string, help: string, read: () => number | undefined): void {
  registry.registerMetric(new MirroredValue('gauge', name, help, read) as unknown as Metric);
}

/** One label set of the HTTP latency histogram. */
class LatencySeries extends DurationHistogram {
  readonly labels: { method: string; route: string; status: string };

  constructor(method: string, route: string, status: number) {
    super();
    this.labels = { method, route, status: String(status) };
  }
}

interface ExportedValue {
  labels: Record<string, string | number>;
  sharedLabels?: object;
  value: number;
  metricName: string;
}

interface ExportedMetric {
  name: string;
  help: string;
  type: string;
  aggregator: string;
  values: ExportedValue[];
}

/** Appends one histogram series in prom-client's export shape: cumulative buckets, sum, count. */
function pushHistogram(
  values: ExportedValue[],
  name: string,
  histogram: DurationHistogramSnapshot | DurationHistogram,
  sharedLabels: object,
): void {
  const bucketName = `${name}_bucket`;
  let cumulative = 0;
  for (let i = 0; i < histogram.bounds.length; i++) {
    cumulative += histogram.counts[i] as number;
    values.push({
      labels: { le: histogram.bounds[i] as number },
      sharedLabels,
      value: cumulative,
      metricName: bucketName,
    });
  }
  values.push(
    { labels: { le: '+Inf' }, sharedLabels, value: histogram.count, metricName: bucketName },
    { labels: {}, sharedLabels, value: histogram.sum, metricName: `${name}_sum` },
    { labels: {}, sharedLabels, value: histogram.count, metricName: `${name}_count` },
  );
}

/**
 * One unlabelled value read from the store when scraped (registered as a custom metric, as
 * MirroredHistogram): no sample at all while `read` returns undefined, where prom-client's own
 * Counter and Gauge would print 0.
 */
class MirroredValue {
  readonly aggregator = 'sum';
  readonly type: 'counter' | 'gauge';
  readonly name: string;
  readonly help: string;
  readonly #read: () => number | undefined;

  constructor(type: 'counter' | 'gauge', name: string, help: string, read: () => number | undefined) {
    this.type = type;
    this.name = name;
    this.help = help;
    this.#read = read;
  }

  get(): ExportedMetric {
    const value = this.#read();
    const values: ExportedValue[] = value === undefined ? [] : [{ labels: {}, value, metricName: this.name }];
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

/** A histogram whose buckets are read from the store at scrape time (the store owns the counts). */
class MirroredHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  readonly #read: () => DurationHistogramSnapshot | undefined;

  constructor(name: string, help: string, read: () => DurationHistogramSnapshot | undefined) {
    this.name = name;
    this.help = help;
    this.#read = read;
  }

  get(): ExportedMetric {
    const values: ExportedValue[] = [];
    const histogram = this.#read();
    if (histogram) pushHistogram(values, this.name, histogram, {});
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

/**
 * ringstore_http_request_duration_seconds. prom-client's Histogram re-hashes the label object on
 * every observe, even through a cached child; this one finds its series by three Map lookups and
 * counts into a typed array, and builds prom-client's export shape only when scraped (registered
 * as a custom metric, so the text format is prom-client's own).
 */
class RequestLatency {
  readonly name = 'ringstore_http_request_duration_seconds';
  readonly help = 'HTTP request latency by route and status';
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  /** method → route → status → series. */
  readonly #series = new Map<string, Map<string, Map<number, LatencySeries>>>();

  observe(method: string, route: string, status: number, seconds: number): void {
    let byRoute = this.#series.get(method);
    if (!byRoute) {
      byRoute = new Map();
      this.#series.set(method, byRoute);
    }
    let byStatus = byRoute.get(route);
    if (!byStatus) {
      byStatus = new Map();
      byRoute.set(route, byStatus);
    }
    let series = byStatus.get(status);
    if (!series) {
      series = new LatencySeries(method, route, status);
      byStatus.set(status, series);
    }
    series.observe(seconds);
  }

  get(): ExportedMetric {
    const values: ExportedValue[] = [];
    for (const byRoute of this.#series.values())
      for (const byStatus of byRoute.values())
        for (const series of byStatus.values()) pushHistogram(values, this.name, series, series.labels);
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

/** The Prometheus registry of one HTTP server: its own, so several servers in a process never clash. */
export class HttpMetrics {
  readonly registry = new Registry();
  readonly #requestLatency = new RequestLatency();
  /** Plain counts on the hot path; prom-client reads them at scrape time. */
  readonly appended = { batches: 0, events: 0, bytes: 0 };
  readonly rejectedRequests: Counter<'code'>;
  readonly #readStore: () => StoreMetrics | undefined;
  #snapshot: StoreMetrics | undefined;

  constructor(store: EventStore, readStore: () => StoreMetrics | undefined = () => storeMetricsOf(store)) {
    const registers = [this.registry];
    // The stock process and Node.js metrics under their usual names (process_*, nodejs_*), so the
    // dashboards made for them work as they are.
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'ringstore_build_info',
      help: 'always 1; the labels say which ringstore and Node.js serve',
      labelNames: ['version', 'node'],
      registers,
    }).set({ version: packageVersion(), node: process.versions.node }, 1);
    this.registry.registerMetric(this.#requestLatency as unknown as Metric);
    const appended = this.appended;
    mirroredCounter(
      this.registry,
      'ringstore_http_appended_batches_total',
      'batches appended through HTTP (201 answers, bulk lines included)',
      () => appended.batches,
    );
    mirroredCounter(
      this.registry,
      'ringstore_http_appended_events_total',
      'events appended through HTTP',
      () => appended.events,
    );
    mirroredCounter(
      this.registry,
      'ringstore_http_appended_bytes_total',
      'event data and metadata bytes appended through HTTP',
      () => appended.bytes,
    );
    this.rejectedRequests = new Counter({
      name: 'ringstore_http_errors_total',
      help: 'error answers by error code',
      labelNames: ['code'],
      registers,
    });
    mirroredGauge(this.registry, 'ringstore_generation', 'last committed generation', () => store.generation);
    // One snapshot per scrape: the first collector to run takes it (see metricsText).
    const field = (key: NumericStoreMetric) => () => this.#snapshot?.[key];
    mirroredCounter(
      this.registry,
      'ringstore_store_appended_batches_total',
      'batches committed by the store',
      field('appendedBatches'),
    );
    mirroredCounter(
      this.registry,
      'ringstore_store_appended_events_total',
      'events committed by the store',
      field('appendedEvents'),
    );
    mirroredCounter(
      this.registry,
      'ringstore_store_appended_bytes_total',
      'event data bytes committed by the store',
      field('appendedBytes'),
    );
    mirroredCounter(
      this.registry,
      'ringstore_store_generations_total',
      'generations flushed since open',
      field('generations'),
    );
    mirroredCounter(
      this.registry,
      'ringstore_store_commits_total',
      'writer commit cycles (group commits) since open',
      field('commits'),
    );
    mirroredCounter(this.registry, 'ringstore_store_fsyncs_total', 'fsync calls since open', field('fsyncs'));
    mirroredCounter(
      this.registry,
      'ringstore_store_fsync_seconds_total',
      'time spent in fsync since open',
      field('fsyncSecondsTotal'),
    );
    mirroredGauge(
      this.registry,
      'ringstore_store_last_fsync_seconds',
      'duration of the last fsync',
      field('fsyncSecondsLast'),
    );
    this.registry.registerMetric(
      new MirroredHistogram(
        'ringstore_store_fsync_duration_seconds',
        'duration of each fsync/fdatasync of the writer since open',
        () => this.#snapshot?.fsyncDurations,
      ) as unknown as Metric,
    );
    mirroredGauge(this.registry, 'ringstore_ring_bytes', 'ring capacity in bytes', field('ringBytes'));
    mirroredGauge(
      this.registry,
      'ringstore_ring_used_bytes',
      'ring bytes claimed and not yet released',
      field('ringUsedBytes'),
    );
    mirroredGauge(this.registry, 'ringstore_crc_threads', 'CRC pool threads', field('crcThreads'));
    mirroredGauge(
      this.registry,
      'ringstore_crc_utilization_ratio',
      'CRC pool utilisation, 0 to 1',
      field('crcUtilization'),
    );
    mirroredCounter(
      this.registry,
      'ringstore_store_backpressure_total',
      'puts refused with BACKPRESSURE',
      field('backpressureRejections'),
    );
    this.#cacheMetrics(registers);
    this.#clusterMetrics(registers);
    this.#readStore = readStore;
  }

  observeRequest(method: string, route: string | undefined, status: number, elapsedMs: number): void {
    // Unmatched URLs share one label value, so scanners cannot grow the label set.
    this.#requestLatency.observe(method, route ?? 'unmatched', status, elapsedMs / 1000);
  }

  /**
   * Per cache (label `cache`): what it holds in its unit (`ringstore_cache_bytes` for the index
   * caches, `ringstore_cache_entries` for the instance cache), its capacity, and hits and misses
   * since open, from which a dashboard takes the hit rate.
   */
  #cacheMetrics(registers: Registry[]): void {
    const caches = () => this.#snapshot?.caches ?? [];
    const gauge = (
      name: string,
      help: string,
      unit: 'bytes' | 'entries',
      value: (c: StoreCacheMetric) => number,
    ) =>
      new Gauge({
        name,
        help,
        labelNames: ['cache'],
        registers,
        collect() {
          this.reset();
          for (const c of caches()) if (c.unit === unit) this.set({ cache: c.cache }, value(c));
        },
      });
    gauge('ringstore_cache_bytes', 'bytes held by an index cache', 'bytes', (c) => c.size);
    gauge('ringstore_cache_capacity_bytes', 'the bound of an index cache', 'bytes', (c) => c.capacity);
    gauge('ringstore_cache_entries', 'instance states held by the writer', 'entries', (c) => c.size);
    gauge(
      'ringstore_cache_capacity_entries',
      'the bound of the instance cache',
      'entries',
      (c) => c.capacity,
    );
    for (const [name, help, pick] of [
      ['ringstore_cache_hits_total', 'lookups a cache answered', (c: StoreCacheMetric) => c.hits],
      [
        'ringstore_cache_misses_total',
        'lookups a cache had to read from disk',
        (c: StoreCacheMetric) => c.misses,
      ],
    ] as const) {
      new Counter({
        name,
        help,
        labelNames: ['cache'],
        registers,
        collect() {
          this.reset();
          for (const c of caches()) this.inc({ cache: c.cache }, pick(c));
        },
      });
    }
  }

  /**
   * A cluster node's: lease changes, fenced publishes and forwarded puts (counters), and per domain
   * (label `domain`) the stream messages not applied yet, the last one applied, and whether this
   * node owns it. Absent on a single-node store.
   */
  #clusterMetrics(registers: Registry[]): void {
    const cluster = () => this.#snapshot?.cluster;
    for (const [name, help, pick] of [
      [
        'ringstore_cluster_leases_taken_total',
        'domain leases this node took',
        (c: ClusterMetrics) => c.leasesTaken,
      ],
      [
        'ringstore_cluster_leases_lost_total',
        'domain leases this node lost',
        (c: ClusterMetrics) => c.leasesLost,
      ],
      [
        'ringstore_cluster_fenced_publishes_total',
        'publishes JetStream refused on the expected last sequence',
        (c: ClusterMetrics) => c.fencedPublishes,
      ],
      [
        'ringstore_cluster_forwarded_puts_total',
        "puts this node forwarded to a domain's owner",
        (c: ClusterMetrics) => c.forwardedPuts,
      ],
    ] as const) {
      mirroredCounter(this.registry, name, help, () => {
        const c = cluster();
        return c === undefined ? undefined : pick(c);
      });
    }
    const perDomain = (name: string, help: string, value: (d: ClusterMetrics['domains'][number]) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['domain'],
        registers,
        collect() {
          this.reset();
          for (const d of cluster()?.domains ?? []) this.set({ domain: d.domain }, value(d));
        },
      });
    perDomain(
      'ringstore_cluster_lag_messages',
      'messages of the domain stream this node has not applied',
      (d) => d.lag,
    );
    perDomain(
      'ringstore_cluster_applied_generation',
      'the last stream message (generation) applied',
      (d) => d.applied,
    );
    perDomain('ringstore_cluster_owner', '1 while this node holds the domain lease', (d) =>
      d.owner ? 1 : 0,
    );
  }

  async metricsText(): Promise<string> {
    this.#snapshot = this.#readStore();
    return this.registry.metrics();
  }
}
