import { cpus } from 'node:os';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { CpuMeter, summarizeThreadCpu } from '../../bench/cpu-meter.js';
import { cpuByRole } from '../../bench/report.js';
import { ThreadRoles } from '../../bench/thread-roles.js';
import { compiledWorkerUrl } from '../../src/workers/worker-url.js';

const BUSY_MS = 150;
const EVENTS = 1_000;
const roles = new ThreadRoles();
afterAll(() => roles.close());

describe('per-thread CPU from schedstat', () => {
  it('charges a busy worker its CPU time and counts the busy cores', async () => {
    const worker = new Worker(compiledWorkerUrl('../fixtures/busy-thread.js', import.meta.url), {
      workerData: { busyMs: BUSY_MS },
    });
    try {
      roles.assign(worker.threadId, 'writer');
      await roles.announced(worker.threadId);
      const meter = new CpuMeter(roles);
      meter.start();
      const answer = new Promise<{ ns: number }>((resolve) => worker.once('message', resolve));
      worker.postMessage('go');
      const { ns } = await answer;
      const cpu = meter.stop(EVENTS);

      const writerMicros = ns / 1000;
      const writer = cpu.threads.filter((thread) => thread.role === 'writer');
      expect(writer).toHaveLength(1);
      // The meter's difference covers the worker's own measurement of its spin, and not much more.
      expect(writer[0]!.micros).toBeGreaterThanOrEqual(writerMicros - 1);
      expect(writer[0]!.micros).toBeLessThan(writerMicros + 50_000);
      expect(cpu.roles.writer).toEqual({ threads: 1, microsPerEvent: expect.any(Number) });
      expect(cpu.roles.writer.microsPerEvent).toBeGreaterThanOrEqual((BUSY_MS * 1000) / EVENTS);
      expect(cpu.roles.main.threads).toBe(1);
      expect(cpu.roles.crc.threads).toBe(0);
      expect(cpu.microsPerEvent).toBeGreaterThanOrEqual(cpu.roles.writer.microsPerEvent);
      expect(cpu.cpuSeconds).toBeGreaterThanOrEqual(BUSY_MS / 1000);
      // The worker spun for all of the interval but the hand-offs: about one core on an idle machine
      // (less when other processes take turns on its core), at most all of them.
      expect(cpu.busyCores).toBeGreaterThan(0.1);
      expect(cpu.busyCores).toBeLessThanOrEqual(cpus().length + 0.05);
      expect(cpu.busyCores).toBeCloseTo(cpu.cpuSeconds / cpu.wallSeconds, 1);
      expect(cpu.endedThreads).toBe(0);
      expect(cpuByRole(cpu)).toMatch(/^\d+\.\d\d\/\d+\.\d\d\/–\/\d+\.\d\d$/);
    } finally {
      await worker.terminate();
    }
  });

  it('groups threads by role, counts new threads from zero and ended ones apart', () => {
    const roleOf = (tid: number) => (tid === 1 ? 'main' : tid === 2 ? 'crc' : tid === 3 ? 'crc' : 'other');
    const cpu = summarizeThreadCpu(
      [
        { tid: 1, comm: 'node', ns: 1_000_000 },
        { tid: 2, comm: 'node', ns: 5_000_000 },
        { tid: 9, comm: 'node', ns: 7_000_000 },
      ],
      [
        { tid: 1, comm: 'node', ns: 3_000_000 },
        { tid: 2, comm: 'node', ns: 6_000_000 },
        { tid: 3, comm: 'node', ns: 1_000_000 },
        { tid: 4, comm: 'node', ns: 0 },
      ],
      roleOf,
      1_000,
      0.002,
    );
    expect(cpu.roles.main).toEqual({ threads: 1, microsPerEvent: 2 });
    expect(cpu.roles.crc).toEqual({ threads: 2, microsPerEvent: 2 });
    expect(cpu.roles.other).toEqual({ threads: 0, microsPerEvent: 0 });
    expect(cpu.microsPerEvent).toBe(4);
    expect(cpu.cpuSeconds).toBe(0.004);
    expect(cpu.busyCores).toBe(2);
    expect(cpu.endedThreads).toBe(1);
    expect(cpu.threads.map((thread) => [thread.tid, thread.micros])).toEqual([
      [1, 2000],
      [2, 1000],
      [3, 1000],
      [4, 0],
    ]);
    expect(cpuByRole(cpu)).toBe('2.00/–/2.00/–');
  });
});
