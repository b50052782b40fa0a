import { element, escapeXml, niceTicks, shortNumber, svgDocument, text } from './svg.js';

export interface Series {
  name: string;
  color: string;
}

/** One row of bars: one value per series (undefined: no bar), stacked or side by side. */
export interface BarRow {
  label: string;
  values: (number | undefined)[];
}

/** A vertical line across all rows at a value, e.g. the lmdb or raw-floor rate. */
export interface ReferenceLine {
  label: string;
  value: number;
  color: string;
}

export interface BarChart {
  title: string;
  /** What the values are, under the axis, e.g. "events/s". */
  unit: string;
  series: Series[];
  rows: BarRow[];
  /** 'stacked': segments end to end (parts of a whole); 'grouped': one thin bar per series. */
  layout: 'stacked' | 'grouped';
  lines?: ReferenceLine[];
}

const WIDTH = 960;
const LABEL_WIDTH = 290;
const RIGHT = 70;
const TOP = 76;
const ROW_GAP = 8;

/**
 * A horizontal bar chart as a standalone SVG document: rows top to bottom with their labels on the
 * left, a value axis with round ticks along the bottom, the value at the end of each row, a legend,
 * and optional labelled reference lines.
 */
export function renderBarChart(chart: BarChart): string {
  const barHeight = chart.layout === 'grouped' ? 12 : 16;
  const rowHeight = (chart.layout === 'grouped' ? barHeight * chart.series.length : barHeight) + ROW_GAP;
  const plotHeight = chart.rows.length * rowHeight;
  const height = TOP + plotHeight + 48;
  const plotWidth = WIDTH - LABEL_WIDTH - RIGHT;
  const totals = chart.rows.map((row) =>
    chart.layout === 'stacked'
      ? row.values.reduce<number>((sum, v) => sum + (v ?? 0), 0)
      : Math.max(0, ...row.values.map((v) => v ?? 0)),
  );
  const ticks = niceTicks(Math.max(0, ...totals, ...(chart.lines ?? []).map((l) => l.value)));
  const max = ticks.at(-1) as number;
  const x = (value: number) => LABEL_WIDTH + (value / max) * plotWidth;
  const body: string[] = [text(16, 24, chart.title, { 'font-size': 16, 'font-weight': 'bold' })];

  // Legend.
  let legendX = LABEL_WIDTH;
  for (const series of chart.series) {
    body.push(element('rect', { x: legendX, y: 36, width: 12, height: 12, fill: series.color }));
    body.push(text(legendX + 16, 46, series.name));
    legendX += 28 + series.name.length * 7;
  }

  // Grid and axis.
  const axisY = TOP + plotHeight;
  for (const tick of ticks) {
    body.push(element('line', { x1: x(tick), y1: TOP - 4, x2: x(tick), y2: axisY, stroke: '#e3e5e8' }));
    body.push(text(x(tick), axisY + 16, shortNumber(tick), { 'text-anchor': 'middle', fill: '#444' }));
  }
  body.push(
    text(LABEL_WIDTH + plotWidth / 2, axisY + 36, chart.unit, { 'text-anchor': 'middle', fill: '#444' }),
  );

  chart.rows.forEach((row, i) => {
    const top = TOP + i * rowHeight;
    body.push(
      text(LABEL_WIDTH - 8, top + (rowHeight - ROW_GAP) / 2 + 4, row.label, { 'text-anchor': 'end' }),
    );
    let start = 0;
    row.values.forEach((value, s) => {
      if (value === undefined || value <= 0) return;
      const series = chart.series[s] as Series;
      const y = chart.layout === 'grouped' ? top + s * barHeight : top;
      const from = chart.layout === 'stacked' ? start : 0;
      body.push(
        element(
          'rect',
          { x: x(from), y, width: x(from + value) - x(from), height: barHeight - 1, fill: series.color },
          element(
            'title',
            {},
            escapeXml(`${row.label}, ${series.name}: ${shortNumber(value)} ${chart.unit}`),
          ),
        ),
      );
      if (chart.layout === 'grouped') {
        body.push(
          text(x(value) + 4, y + barHeight - 2, shortNumber(value), { 'font-size': 10, fill: '#333' }),
        );
      }
      start += value;
    });
    if (chart.layout === 'stacked' && totals[i]) {
      body.push(
        text(x(totals[i] as number) + 4, top + barHeight - 4, shortNumber(totals[i] as number), {
          fill: '#333',
        }),
      );
    }
  });

  for (const line of chart.lines ?? []) {
    body.push(
      element('line', {
        x1: x(line.value),
        y1: TOP - 8,
        x2: x(line.value),
        y2: axisY,
        stroke: line.color,
        'stroke-width': 2,
        'stroke-dasharray': '6 4',
      }),
    );
    body.push(
      text(x(line.value), TOP - 12, `${line.label} ${shortNumber(line.value)}`, {
        'text-anchor': 'end',
        fill: line.color,
        'font-weight': 'bold',
      }),
    );
  }
  return svgDocument(WIDTH, height, chart.title, body);
}
