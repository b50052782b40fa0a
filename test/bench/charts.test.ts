import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpCharts } from '../../bench/charts/http-charts.js';
import { runCharts } from '../../bench/charts/run-charts.js';
import { niceTicks } from '../../bench/charts/svg.js';
import { writeCharts } from '../../bench/charts/write-charts.js';
import type { RunReport } from '../../bench/report.js';
import { type LaunchedBrowser, launchChromium, SCREENSHOTS } from '../support/browser.js';

/**
 * The bench's SVG charts: drawn from result JSON (the committed results and a small report made
 * here), parsed by Chromium's XML parser as image/svg+xml, and one rendered to a screenshot.
 */

const resultsDir = join(process.cwd(), 'bench', 'results');

function role(microsPerEvent: number) {
  return { threads: microsPerEvent > 0 ? 1 : 0, microsPerEvent };
}

/** A report with the shapes the charts read: three write cases and a read case. */
function smallReport(): RunReport {
  const write = (id: string, system: string, eventsPerSec: number, main: number, writer: number) => ({
    id,
    kind: 'write' as const,
    system,
    description: id,
    events: 1000,
    bytes: 100_000,
    seconds: 1,
    eventsPerSec,
    mbPerSec: 1,
    notes: [],
    ratios: {},
    ...(system === 'ringstore' ? { latencyP50Ms: 2, latencyP99Ms: 9 } : {}),
    cpu: {
      wallSeconds: 1,
      cpuSeconds: 1,
      busyCores: 1,
      microsPerEvent: main + writer,
      roles: { main: role(main), writer: role(writer), crc: role(0), producer: role(0), other: role(0.5) },
      threads: [],
      endedThreads: 0,
    },
  });
  return {
    startedAt: '2026-12-02T00:00:00.000Z',
    finishedAt: '2026-12-02T00:01:00.000Z',
    filters: [],
    config: {} as RunReport['config'],
    machine: { commit: 'abc1234' } as RunReport['machine'],
    results: [
      write('floor', 'floor', 2_000_000, 0.3, 0),
      write('lmdb write', 'lmdb', 150_000, 1, 0),
      write('ringstore <main> & "fsync"', 'ringstore', 300_000, 1, 1.5),
      {
        ...write('read ringstore warm', 'ringstore', 1_000_000, 0, 0),
        kind: 'read' as const,
        cpu: undefined,
      },
    ],
    failures: [],
    targets: [],
  };
}

describe('bench chart geometry', () => {
  it('ticks are round and cover the largest value', () => {
    expect(niceTicks(2_084_484)).toEqual([0, 500_000, 1_000_000, 1_500_000, 2_000_000, 2_500_000]);
    expect(niceTicks(4.78)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(niceTicks(0)).toEqual([0, 1]);
  });

  it('draws bars to scale and the lmdb and floor rates as lines', () => {
    const svg = runCharts(smallReport()).get('writes') as string;
    // Axis 0 … 2M (the floor) over 600 px from x = 290: 300k events/s is a bar of 90 px.
    expect(svg).toMatch(/<rect x="290" y="[\d.]+" width="90" height="15" fill="#1f5fbf">/);
    expect(svg).toMatch(/<line x1="890" [^>]*stroke="#6b6b6b" stroke-width="2"/);
    expect(svg).toContain('>lmdb 150k</text>');
    expect(svg).toContain('>raw floor 2M</text>');
    expect(svg).toContain('>ringstore &lt;main&gt; &amp; &quot;fsync&quot;</text>');
    expect(svg).toContain('<title>ringstore &lt;main&gt; &amp; &quot;fsync&quot;, ringstore: 300k');
  });
});

describe('writing the charts', () => {
  it("replaces a base's charts and removes those this run did not draw, leaving other files", () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringstore-charts-'));
    try {
      for (const name of ['latest-writes.svg', 'latest-reads.svg', 'http-latest-latency.svg', 'latest.md']) {
        writeFileSync(join(dir, name), 'old');
      }
      const written = writeCharts(dir, 'latest', new Map([['writes', '<svg/>']]));
      expect(written).toEqual([join(dir, 'latest-writes.svg')]);
      expect(readdirSync(dir).sort()).toEqual(['http-latest-latency.svg', 'latest-writes.svg', 'latest.md']);
      expect(readFileSync(join(dir, 'latest-writes.svg'), 'utf8')).toBe('<svg/>');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('bench charts in a browser', () => {
  let launched: LaunchedBrowser;
  let browser: Browser;
  beforeAll(async () => {
    launched = await launchChromium();
    browser = launched.browser;
  });
  afterAll(async () => {
    await launched?.close();
  });

  it('every chart, committed or drawn now, is an SVG document Chromium parses', async () => {
    const committed = readdirSync(resultsDir)
      .filter((name) => name.endsWith('.svg'))
      .map((name) => [name, readFileSync(join(resultsDir, name), 'utf8')] as const);
    expect(committed.map(([name]) => name)).toEqual(
      expect.arrayContaining([
        'latest-writes.svg',
        'latest-latency.svg',
        'latest-cpu.svg',
        'http-latest-throughput.svg',
      ]),
    );
    const drawn = [
      ...runCharts(smallReport()),
      ...httpCharts(JSON.parse(readFileSync(join(resultsDir, 'http-latest.json'), 'utf8'))),
    ];
    expect(drawn.map(([suffix]) => suffix)).toEqual([
      'writes',
      'reads',
      'latency',
      'cpu',
      'throughput',
      'latency',
    ]);
    const page = await browser.newPage();
    for (const [name, svg] of [...committed, ...drawn]) {
      const parsed = await page.evaluate(
        `(() => { const d = new DOMParser().parseFromString(${JSON.stringify(svg)}, 'image/svg+xml');
          return { root: d.documentElement.namespaceURI + ' ' + d.documentElement.localName,
                   errors: d.getElementsByTagName('parsererror').length,
                   bars: d.querySelectorAll('rect[fill]').length }; })()`,
      );
      expect(parsed, name).toMatchObject({ root: 'http://www.w3.org/2000/svg svg', errors: 0 });
      expect((parsed as { bars: number }).bars, name).toBeGreaterThan(2);
    }
    // A broken document is caught by the same check.
    const broken = await page.evaluate(
      `new DOMParser().parseFromString('<svg xmlns="http://www.w3.org/2000/svg"><text>a & b</text></svg>', 'image/svg+xml').getElementsByTagName('parsererror').length`,
    );
    expect(broken).toBeGreaterThan(0);
    await page.close();
  });

  it('renders the writes chart at its size', async () => {
    const page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
    await page.goto(pathToFileURL(join(resultsDir, 'latest-writes.svg')).href);
    const box = await page.locator('svg').boundingBox();
    expect(box?.width).toBe(960);
    expect(box?.height).toBeGreaterThan(200);
    const lines = await page.locator('text').allTextContents();
    expect(lines.some((t) => t.startsWith('lmdb '))).toBe(true);
    expect(lines.some((t) => t.startsWith('raw floor '))).toBe(true);
    await page.screenshot({ path: join(SCREENSHOTS, 'bench-latest-writes.png'), timeout: 10_000 });
    await page.close();
  });
});
