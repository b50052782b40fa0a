import uPlot from '../vendor/uPlot.esm.js';
import { getText } from './api.js';
import { byId, el } from './dom.js';
import { formatCount } from './format.js';
import { MetricsSampler } from './metrics-sampler.js';
import { showError } from './status.js';
import { currentToken } from './token.js';

const INTERVAL_MS = 2000;
/** Five minutes of points. */
const KEPT = 150;

const CHARTS = [
  { title: 'Appends (events/s)', series: [['appendsPerSecond', 'events/s', '#1f5fbf']] },
  {
    title: 'fsync latency (ms)',
    series: [
      ['fsyncP50', 'p50', '#2a9d4b'],
      ['fsyncP90', 'p90', '#d08a00'],
      ['fsyncP99', 'p99', '#a3161b'],
    ],
  },
  { title: 'Ring occupancy (%)', series: [['ringOccupancy', 'used %', '#6a3fb5']] },
  { title: 'Backpressure (rejected puts/s)', series: [['backpressurePerSecond', 'rejections/s', '#a3161b']] },
];

function fixed(value, digits) {
  return value === undefined ? '–' : value.toFixed(digits);
}

function showFigures(point) {
  const figures = [
    [
      'appends/s',
      point.appendsPerSecond === undefined ? '–' : formatCount(Math.round(point.appendsPerSecond)),
    ],
    [
      'fsync p50 / p90 / p99 (ms)',
      [point.fsyncP50, point.fsyncP90, point.fsyncP99].map((v) => fixed(v, 2)).join(' / '),
    ],
    ['ring occupancy', point.ringOccupancy === undefined ? '–' : `${fixed(point.ringOccupancy, 1)} %`],
    ['backpressure rejections/s', fixed(point.backpressurePerSecond, 1)],
    ['generation', point.generation === undefined ? '–' : formatCount(point.generation)],
  ];
  byId('metrics-now').replaceChildren(
    ...figures.flatMap(([name, value]) => [el('dt', {}, name), el('dd', { 'data-figure': name }, value)]),
  );
}

function makeCharts(container) {
  const width = Math.max(480, Math.min(560, container.clientWidth - 16));
  return CHARTS.map((chart) => {
    const box = el('figure', { className: 'chart' }, el('h3', {}, chart.title));
    container.append(box);
    const plot = new uPlot(
      {
        width,
        height: 200,
        scales: { x: { time: true } },
        series: [
          {},
          ...chart.series.map(([, label, stroke]) => ({ label, stroke, width: 2, spanGaps: false })),
        ],
        axes: [{}, { size: 60 }],
      },
      [[], ...chart.series.map(() => [])],
      box,
    );
    return { chart, plot };
  });
}

/** Scrapes /metrics every 2 s while not paused and draws the last five minutes. */
export function initMetricsView() {
  const sampler = new MetricsSampler();
  const points = [];
  let charts;
  let paused = false;
  const toggle = byId('metrics-toggle');
  toggle.addEventListener('click', () => {
    paused = !paused;
    toggle.textContent = paused ? 'Resume' : 'Pause';
    toggle.setAttribute('aria-pressed', String(!paused));
  });

  // After a 401 or 403, scraping waits for another token instead of failing every 2 s.
  let refusedToken = null;

  async function scrape() {
    if (paused || (refusedToken !== null && refusedToken === (currentToken() ?? ''))) return;
    try {
      const point = sampler.add(await getText('metrics'), Date.now());
      refusedToken = null;
      if (!point) return;
      points.push(point);
      if (points.length > KEPT) points.shift();
      showFigures(point);
      charts ??= makeCharts(byId('metrics-charts'));
      for (const { chart, plot } of charts) {
        plot.setData([
          points.map((p) => p.time),
          ...chart.series.map(([key]) => points.map((p) => p[key] ?? null)),
        ]);
      }
    } catch (err) {
      if (err.status === 401 || err.status === 403) refusedToken = currentToken() ?? '';
      showError(err);
    }
  }
  scrape();
  setInterval(scrape, INTERVAL_MS);
}
