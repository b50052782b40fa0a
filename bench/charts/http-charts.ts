import { type BarChart, renderBarChart } from './bar-chart.js';

/** The parts of bench/http/run.ts's report the charts draw. */
export interface HttpReport {
  date: string;
  commit: string;
  rows: {
    scenario: string;
    target: string;
    eventsPerSec: number;
    latencyP50Ms: number;
    latencyP99Ms: number;
  }[];
}

const TARGET_COLORS: Record<string, string> = { bare: '#6b6b6b', stub: '#9bb7e0', ringstore: '#1f5fbf' };

function targetsOf(report: HttpReport): string[] {
  return [...new Set(report.rows.map((r) => r.target))];
}

function scenariosOf(report: HttpReport): string[] {
  return [...new Set(report.rows.map((r) => r.scenario))];
}

function rowValue(
  report: HttpReport,
  scenario: string,
  target: string,
  pick: (row: HttpReport['rows'][number]) => number,
) {
  const row = report.rows.find((r) => r.scenario === scenario && r.target === target);
  return row ? pick(row) : undefined;
}

/** events/s per scenario, ringstore beside the bare node:http ceiling. */
function throughput(report: HttpReport): BarChart {
  const targets = targetsOf(report);
  return {
    title: `HTTP: events/s per scenario (${report.date.slice(0, 10)}, commit ${report.commit})`,
    unit: 'events/s',
    layout: 'grouped',
    series: targets.map((t) => ({ name: t, color: TARGET_COLORS[t] ?? '#333' })),
    rows: scenariosOf(report).map((s) => ({
      label: s,
      values: targets.map((t) => rowValue(report, s, t, (r) => r.eventsPerSec)),
    })),
  };
}

/** Request latency percentiles per scenario and target. */
function latency(report: HttpReport): BarChart {
  const rows = scenariosOf(report).flatMap((s) =>
    targetsOf(report).map((t) => ({
      label: `${s} ${t}`,
      values: [rowValue(report, s, t, (r) => r.latencyP50Ms), rowValue(report, s, t, (r) => r.latencyP99Ms)],
    })),
  );
  return {
    title: `HTTP: request latency percentiles (${report.date.slice(0, 10)}, commit ${report.commit})`,
    unit: 'ms',
    layout: 'grouped',
    series: [
      { name: 'p50', color: '#2a9d4b' },
      { name: 'p99', color: '#a3161b' },
    ],
    rows,
  };
}

/** The charts of an HTTP load test, by file suffix. */
export function httpCharts(report: HttpReport): Map<string, string> {
  const charts = new Map<string, string>();
  if (report.rows.length === 0) return charts;
  charts.set('throughput', renderBarChart(throughput(report)));
  charts.set('latency', renderBarChart(latency(report)));
  return charts;
}
