import type { CaseResult } from '../measure.js';
import type { RunReport } from '../report.js';
import { THREAD_ROLES } from '../thread-roles.js';
import { type BarChart, type ReferenceLine, renderBarChart, type Series } from './bar-chart.js';

/** Colours by system and thread role, the same in every chart. */
const SYSTEM_COLORS: Record<string, string> = {
  ringstore: '#1f5fbf',
  engine: '#5b8fd9',
  lmdb: '#d08a00',
  floor: '#6b6b6b',
};
const ROLE_COLORS: Record<string, string> = {
  main: '#1f5fbf',
  writer: '#a3161b',
  crc: '#2a9d4b',
  producer: '#6a3fb5',
  other: '#9aa0a8',
};

function rows(report: RunReport, kind: CaseResult['kind']): CaseResult[] {
  return report.results.filter((r) => r.kind === kind);
}

function stamp(report: RunReport): string {
  return `${report.startedAt.slice(0, 10)}, commit ${report.machine.commit}`;
}

/** Write cases: events/s per case, by system, with the lmdb and raw-floor rates as lines. */
function writeThroughput(report: RunReport): BarChart | undefined {
  const writes = rows(report, 'write');
  if (writes.length === 0) return undefined;
  const lines: ReferenceLine[] = [];
  const lmdb = writes.find((r) => r.system === 'lmdb');
  const floor = writes.find((r) => r.system === 'floor');
  if (lmdb) lines.push({ label: 'lmdb', value: lmdb.eventsPerSec, color: SYSTEM_COLORS.lmdb as string });
  if (floor)
    lines.push({ label: 'raw floor', value: floor.eventsPerSec, color: SYSTEM_COLORS.floor as string });
  const systems = [...new Set(writes.filter((r) => r !== lmdb && r !== floor).map((r) => r.system))];
  const series: Series[] = systems.map((s) => ({ name: s, color: SYSTEM_COLORS[s] ?? '#333' }));
  return {
    title: `Writes: events/s per case (${stamp(report)})`,
    unit: 'events/s (median of rounds)',
    layout: 'stacked',
    series,
    lines,
    rows: writes
      .filter((r) => r !== lmdb && r !== floor)
      .map((r) => ({
        label: r.id,
        values: systems.map((s) => (s === r.system ? r.eventsPerSec : undefined)),
      })),
  };
}

/** Read cases: events/s per case, ringstore beside lmdb in the same cache state. */
function readThroughput(report: RunReport): BarChart | undefined {
  const reads = rows(report, 'read');
  if (reads.length === 0) return undefined;
  const systems = [...new Set(reads.map((r) => r.system))];
  return {
    title: `Reads: events/s per case (${stamp(report)})`,
    unit: 'events/s (median of rounds)',
    layout: 'stacked',
    series: systems.map((s) => ({ name: s, color: SYSTEM_COLORS[s] ?? '#333' })),
    rows: reads.map((r) => ({
      label: r.id,
      values: systems.map((s) => (s === r.system ? r.eventsPerSec : undefined)),
    })),
  };
}

/** Put latency percentiles of the cases that measure them. */
function writeLatency(report: RunReport): BarChart | undefined {
  const measured = rows(report, 'write').filter(
    (r) => r.latencyP50Ms !== undefined || r.latencyP99Ms !== undefined,
  );
  if (measured.length === 0) return undefined;
  return {
    title: `Writes: put latency percentiles (${stamp(report)})`,
    unit: 'ms',
    layout: 'grouped',
    series: [
      { name: 'p50', color: '#2a9d4b' },
      { name: 'p99', color: '#a3161b' },
    ],
    rows: measured.map((r) => ({ label: r.id, values: [r.latencyP50Ms, r.latencyP99Ms] })),
  };
}

/** CPU µs per event of each write case, by thread role (schedstat of every thread of the case). */
function writeCpu(report: RunReport): BarChart | undefined {
  const measured = rows(report, 'write').filter((r) => r.cpu !== undefined);
  if (measured.length === 0) return undefined;
  const roles = THREAD_ROLES.filter((role) =>
    measured.some((r) => (r.cpu?.roles[role]?.microsPerEvent ?? 0) > 0),
  );
  return {
    title: `Writes: CPU per event by thread (${stamp(report)})`,
    unit: 'CPU µs per event',
    layout: 'stacked',
    series: roles.map((role) => ({ name: role, color: ROLE_COLORS[role] as string })),
    rows: measured.map((r) => ({
      label: r.id,
      values: roles.map((role) => r.cpu?.roles[role]?.microsPerEvent),
    })),
  };
}

/** The charts of a bench run, by file suffix: `<base>-writes.svg` and so on. */
export function runCharts(report: RunReport): Map<string, string> {
  const charts = new Map<string, string>();
  const make: [string, (r: RunReport) => BarChart | undefined][] = [
    ['writes', writeThroughput],
    ['reads', readThroughput],
    ['latency', writeLatency],
    ['cpu', writeCpu],
  ];
  for (const [suffix, build] of make) {
    const chart = build(report);
    if (chart && chart.rows.length > 0) charts.set(suffix, renderBarChart(chart));
  }
  return charts;
}
