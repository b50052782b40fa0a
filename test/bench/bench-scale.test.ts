import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CaseContext } from '../../bench/case.js';
import { run as runReadback } from '../../bench/cases/readback.js';
import { run as runScale } from '../../bench/cases/scale.js';
import type { BenchConfig } from '../../bench/config.js';
import type { CaseResult } from '../../bench/measure.js';
import { checkTargets, type RunReport, renderMarkdown, renderText, withRatios } from '../../bench/report.js';
import { selectSpecs } from '../../bench/specs.js';
import { ThreadRoles } from '../../bench/thread-roles.js';
import { Workload } from '../../bench/workload.js';

/**
 * The scale and read-back cases end to end at a tiny size (fresh processes run dist/, which
 * `npm test` builds first): the rows they produce, the values in them and the report's targets.
 */
const config: BenchConfig = {
  events: 20_000,
  warmupEvents: 0,
  eventBytes: 100,
  batchEvents: 10,
  instances: 200,
  inFlight: 100,
  batchesPerCall: 100,
  readInstances: 50,
  caseSeconds: 60,
  rounds: 1,
  seed: 11,
  quick: true,
  scaleEvents: [20_000, 40_000],
  scaleInstanceEvents: 10,
  readbackEvents: 20_000,
  readbackInstanceEvents: 100,
};

let dir: string;
let scaleRows: CaseResult[];
let readbackRows: CaseResult[];

function context(name: string): CaseContext {
  return {
    config,
    workload: new Workload(config),
    dir: mkdtempSync(join(dir, name)),
    deadline: Number.POSITIVE_INFINITY,
    threads: new ThreadRoles(),
  };
}

function byId(rows: readonly CaseResult[], id: string): CaseResult {
  const row = rows.find((result) => result.id === id);
  if (row === undefined) throw new Error(`no row ${id} among ${rows.map((result) => result.id).join(', ')}`);
  return row;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ringstore-bench-scale-'));
  scaleRows = await runScale(context('scale-'));
  readbackRows = await runReadback(context('readback-'));
}, 180_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('bench scale case', () => {
  it('opens every size with both APIs in fresh processes, then the largest after a crash', () => {
    expect(scaleRows.map((row) => row.id)).toEqual([
      'open engine 20k',
      'open ringstore 20k',
      'open engine 40k',
      'open ringstore 40k',
      'open ringstore 40k after crash',
    ]);
    for (const row of scaleRows) {
      const open = row.open!;
      expect(row.kind).toBe('open');
      expect(open.openSeconds).toBeGreaterThan(0);
      expect(open.openSeconds).toBe(row.seconds);
      // A Node process holds tens of MiB before it opens anything; the store's files hold ~150 B an event.
      expect(open.rssBeforeOpenMb).toBeGreaterThan(20);
      expect(open.rssAfterReadMb).toBeGreaterThanOrEqual(open.rssAfterOpenMb - 1);
      expect(row.peakRssMb).toBeGreaterThanOrEqual(open.rssAfterOpenMb);
      expect(open.storeMb).toBeGreaterThan((open.storeEvents * 100) / 1024 / 1024);
      expect(open.storeMb).toBeLessThan((open.storeEvents * 1_000) / 1024 / 1024);
      expect(open.readMs).toBeGreaterThan(0);
    }
    for (const size of [20_000, 40_000]) {
      for (const api of ['engine', 'ringstore'] as const) {
        const open = byId(scaleRows, `open ${api} ${size / 1000}k`).open!;
        expect(open).toMatchObject({ api, storeEvents: size, readEvents: 10, afterCrash: false });
      }
      const ring = byId(scaleRows, `open ringstore ${size / 1000}k`).open!;
      // RingStore.open starts a writer thread and a CRC pool: the process grows.
      expect(ring.rssAfterOpenMb).toBeGreaterThan(ring.rssBeforeOpenMb);
      expect(ring.writeEventsPerSec).toBeGreaterThan(0);
    }
  });

  it('keeps every acknowledged append of the SIGKILLed writer', () => {
    const crashed = byId(scaleRows, 'open ringstore 40k after crash');
    expect(crashed.open?.afterCrash).toBe(true);
    // The appender is killed once 10,000 appended events are acknowledged.
    expect(crashed.open!.storeEvents).toBeGreaterThanOrEqual(50_000);
    expect(crashed.notes.join(' ')).toMatch(
      /SIGKILLed \d+ ms after [\d,]+ appended events were acknowledged/,
    );
  });

  it('checks open(largest) ÷ open(smallest) and the RSS growth against the targets', () => {
    const rated = withRatios(scaleRows);
    const targets = checkTargets(rated).filter(
      (check) => check.target.startsWith('open(') || check.target.startsWith('RSS'),
    );
    expect(targets.map((check) => check.target)).toEqual([
      'open(40k) ÷ open(20k) <= 2 (ringstore, fresh process)',
      'RSS after open(40k) − RSS after open(20k) <= 64 MiB (ringstore)',
      'open(40k) ÷ open(20k) <= 2 (engine, fresh process)',
      'RSS after open(40k) − RSS after open(20k) <= 64 MiB (engine)',
    ]);
    const small = byId(scaleRows, 'open ringstore 20k').open!;
    const large = byId(scaleRows, 'open ringstore 40k').open!;
    const ratio = Math.round((large.openSeconds / small.openSeconds) * 100) / 100;
    expect(targets[0]).toMatchObject({
      measured: expect.stringMatching(new RegExp(`^${ratio}× `)),
      met: ratio <= 2,
    });
    const growth = Math.round((large.rssAfterOpenMb - small.rssAfterOpenMb) * 10) / 10;
    expect(targets[1]).toMatchObject({
      measured: expect.stringMatching(new RegExp(`^${growth} MiB`)),
      met: growth <= 64,
    });
  });
});

describe('bench read-back case', () => {
  const measures = ['readback', 'type scan', 'time scan'];

  it('measures ringstore and lmdb warm and cold on the same events', () => {
    const ids = measures.flatMap((measure) =>
      ['warm', 'cold (page cache warm)'].flatMap((cache) =>
        ['lmdb', 'ringstore'].map((system) => `${measure} ${system} ${cache}`),
      ),
    );
    expect(readbackRows.map((row) => row.id).sort()).toEqual(ids.sort());
    for (const row of readbackRows) {
      expect(row.kind).toBe('read');
      expect(row.seconds).toBeGreaterThan(0);
      expect(row.eventsPerSec).toBeGreaterThan(0);
      expect(row.peakRssMb).toBeGreaterThan(20);
    }
    // 50 instances of 100 events; one event in four has the scanned type.
    for (const row of readbackRows.filter((result) => result.id.startsWith('readback '))) {
      expect([row.events, row.bytes]).toEqual([5_000, 500_000]);
    }
    for (const row of readbackRows.filter((result) => result.id.startsWith('type scan '))) {
      expect(row.events).toBe(5_000);
    }
    const timeScans = readbackRows.filter((result) => result.id.startsWith('time scan '));
    expect(new Set(timeScans.map((row) => row.events)).size).toBe(1);
    expect(timeScans[0]!.events).toBeGreaterThan(0);
    expect(timeScans[0]!.events).toBeLessThan(20_000);
  });

  it('rates ringstore against lmdb and checks the warm read-back target', () => {
    const rated = withRatios(readbackRows);
    for (const row of rated.filter((result) => result.system === 'ringstore')) {
      const lmdb = byId(readbackRows, row.id.replace('ringstore', 'lmdb'));
      expect(row.ratios.vsLmdb).toBe(Math.round((row.eventsPerSec / lmdb.eventsPerSec) * 100) / 100);
    }
    const warm = rated.find((row) => row.id === 'readback ringstore warm')!;
    const target = checkTargets(rated).find((check) => check.target.startsWith('read-back case'));
    expect(target).toEqual({
      target: 'read-back case: ringstore warm read-back >= 2x lmdb warm (RingStore.get, one await at a time)',
      measured: `${warm.ratios.vsLmdb}x`,
      met: warm.ratios.vsLmdb! >= 2,
    });
  });
});

describe('bench report of the opt-in cases', () => {
  it('renders the open table, the read rows and the workloads', () => {
    const results = withRatios([...scaleRows, ...readbackRows]);
    const report: RunReport = {
      startedAt: '2026-12-02T00:00:00.000Z',
      finishedAt: '2026-12-02T00:01:00.000Z',
      filters: ['scale', 'readback'],
      config,
      machine: {
        cpus: 2,
        cpuModel: 'test',
        totalMemMb: 1,
        freeMemMb: 1,
        freeDiskMb: 1,
        tmpdir: dir,
        node: process.version,
        platform: process.platform,
        kernel: 'test',
        loadAverageStart: [0, 0, 0],
        loadAverageEnd: [0, 0, 0],
        commit: 'test',
      },
      results,
      failures: [],
      targets: checkTargets(results),
    };
    const markdown = renderMarkdown(report);
    expect(markdown).toContain('## Open in a fresh process');
    expect(markdown).toContain('| open ringstore 40k after crash | RingStore.open after SIGKILL mid-append');
    expect(markdown).toContain('Scale: stores of 20,000, 40,000 events');
    expect(markdown).toContain('Read-back: 20,000 events, 100 per instance');
    expect(markdown).toMatch(/- open\(40k\) ÷ open\(20k\) <= 2 \(ringstore, fresh process\): [\d.]+× /);
    expect(markdown).not.toContain('## Writes');
    expect(renderText(report)).toContain('RSS after open MiB');
  });

  it('leaves the long cases out of the default run and selects them by word', () => {
    expect(selectSpecs([]).map((spec) => spec.id)).not.toContain('scale-open-crash');
    expect(selectSpecs([]).map((spec) => spec.id)).not.toContain('readback-ringstore-lmdb');
    expect(selectSpecs(['scale']).map((spec) => spec.id)).toEqual(['scale-open-crash']);
    expect(selectSpecs(['readback']).map((spec) => spec.id)).toEqual(['readback-ringstore-lmdb']);
  });
});
