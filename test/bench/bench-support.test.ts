import { describe, expect, it } from 'vitest';
import type { BenchConfig } from '../../bench/config.js';
import { type CaseResult, LatencyRecorder, medianRounds, warmUp } from '../../bench/measure.js';
import { checkTargets, withRatios } from '../../bench/report.js';
import { selectSpecs } from '../../bench/specs.js';
import { Workload } from '../../bench/workload.js';
import { crc32 } from '../../src/model/crc.js';

const config: BenchConfig = {
  events: 2_000,
  warmupEvents: 0,
  eventBytes: 100,
  batchEvents: 10,
  instances: 20,
  inFlight: 100,
  batchesPerCall: 100,
  readInstances: 5,
  caseSeconds: 10,
  rounds: 1,
  seed: 7,
  quick: true,
  scaleEvents: [2_000],
  scaleInstanceEvents: 10,
  readbackEvents: 2_000,
  readbackInstanceEvents: 100,
};

function row(id: string, system: string, kind: 'write' | 'read', eventsPerSec: number): CaseResult {
  return {
    id,
    system,
    kind,
    description: '',
    events: 1,
    bytes: 1,
    seconds: 1,
    eventsPerSec,
    mbPerSec: 0,
    notes: [],
  };
}

describe('bench workload', () => {
  it('gives every instance the same number of batches with consecutive versions', () => {
    const workload = new Workload(config);
    const next = new Map<number, number>();
    for (let k = 0; k < workload.batchCount; k++) {
      const instance = workload.instanceOf(k);
      expect(workload.firstVersionOf(k)).toBe(next.get(instance) ?? 1);
      next.set(instance, workload.firstVersionOf(k) + config.batchEvents);
    }
    expect(next.size).toBe(config.instances);
    for (const version of next.values()) expect(version - 1).toBe(config.events / config.instances);
  });

  it('is the same for the same seed and carries correct CRCs', () => {
    const a = new Workload(config);
    const b = new Workload(config);
    for (let k = 0; k < 50; k++) {
      expect(a.instanceOf(k)).toBe(b.instanceOf(k));
      for (const event of a.appendEvents(k)) expect(event.crc).toBe(crc32(event.data));
    }
    expect(new Set(a.readSample(5)).size).toBe(5);
  });
});

describe('bench warm-up', () => {
  it('puts batches 0 … k-1 first, then measures the batches after them', async () => {
    const workload = new Workload({ ...config, warmupEvents: 300 });
    expect(workload.warmupBatches).toBe(30);
    expect(workload.measuredBatch(0)).toBe(30);
    expect(workload.measuredBatch(workload.batchCount - 1)).toBe(30 + workload.batchCount - 1);
    const warmed: number[] = [];
    await warmUp(workload.warmupBatches, 7, async (batch) => {
      warmed.push(batch);
    });
    expect(warmed.sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    // Versions go on where the warm-up left them: the measured puts extend the same instances.
    const first = workload.measuredBatch(0);
    const instance = workload.instanceOf(first);
    const lastWarm = warmed.filter((batch) => workload.instanceOf(batch) === instance).pop() ?? -1;
    expect(lastWarm).toBeGreaterThanOrEqual(0);
    expect(workload.firstVersionOf(first)).toBe(workload.firstVersionOf(lastWarm) + config.batchEvents);
  });
});

describe('bench report', () => {
  it('takes nearest-rank percentiles', () => {
    const latencies = new LatencyRecorder(100);
    for (let i = 100; i >= 1; i--) latencies.record(i);
    expect(latencies.percentile(50)).toBe(50);
    expect(latencies.percentile(99)).toBe(99);
    expect(latencies.percentile(100)).toBe(100);
  });

  it('computes ratios against the baselines of the same run and checks the targets', () => {
    const rated = withRatios([
      row('floor', 'floor', 'write', 1_000_000),
      row('lmdb write', 'lmdb', 'write', 100_000),
      row('storage-engine fsync', 'engine', 'write', 800_000),
      row('ringstore main fsync pool', 'ringstore', 'write', 400_000),
      row('read lmdb warm', 'lmdb', 'read', 1_000_000),
      row('read ringstore warm', 'ringstore', 'read', 1_500_000),
    ]);
    const ring = rated.find((result) => result.id === 'ringstore main fsync pool')!;
    expect(ring.ratios).toEqual({ vsFloor: 0.4, vsLmdb: 4, vsEngine: 0.5 });
    expect(rated.find((result) => result.id === 'read ringstore warm')!.ratios.vsLmdb).toBe(1.5);
    const deep = withRatios([
      row('lmdb write', 'lmdb', 'write', 100_000),
      row('lmdb write @1000', 'lmdb', 'write', 200_000),
      row('ringstore main fsync pool @1000', 'ringstore', 'write', 400_000),
    ]);
    expect(deep[2]!.ratios.vsLmdb).toBe(2);
    const targets = checkTargets(rated);
    expect(targets.map((target) => target.met)).toEqual([false, true, false]);
  });

  it("keeps the median round of each case and every round's rate", () => {
    const merged = medianRounds([
      [row('floor', 'floor', 'write', 3), row('lmdb write', 'lmdb', 'write', 10)],
      [row('floor', 'floor', 'write', 1)],
      [row('floor', 'floor', 'write', 2)],
    ]);
    expect(merged.map((result) => [result.id, result.eventsPerSec, result.rounds])).toEqual([
      ['floor', 2, [3, 1, 2]],
      ['lmdb write', 10, undefined],
    ]);
  });

  it('selects cases by any filter word', () => {
    expect(selectSpecs(['lmdb']).every((spec) => spec.id.includes('lmdb'))).toBe(true);
    expect(selectSpecs([]).length).toBeGreaterThan(2);
    expect(selectSpecs(['no-such-case'])).toEqual([]);
    expect(selectSpecs([]).some((spec) => spec.optIn)).toBe(false);
    expect(selectSpecs(['deep']).length).toBeGreaterThan(0);
  });

  it('selects an opt-in case only by a word its id begins with', () => {
    const ids = (filters: string[]) => selectSpecs(filters).map((spec) => spec.id);
    // "lmdb" is inside the ids of the read-back and deep cases too: neither runs for it.
    expect(ids(['storage', 'lmdb'])).toEqual([
      'lmdb-write',
      'storage-engine-fsync',
      'storage-engine-none',
      'reads-ringstore-lmdb',
    ]);
    expect(ids(['readback'])).toEqual(['readback-ringstore-lmdb']);
    expect(ids(['deep']).every((id) => id.startsWith('deep-'))).toBe(true);
    expect(ids(['deep-lmdb'])).toEqual(['deep-lmdb-write']);
    expect(ids(['cluster'])).toEqual(['cluster-r1-r3-single']);
  });
});
