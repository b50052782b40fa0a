import { readThreads, type ThreadSample } from './thread-cpu.js';
import { THREAD_ROLES, type ThreadRole, type ThreadRoles } from './thread-roles.js';

/** CPU time of the threads of one role over a measured interval. */
export interface RoleCpu {
  /** Threads of this role that ran during the interval. */
  threads: number;
  microsPerEvent: number;
}

/** One thread's CPU time over the interval. */
export interface ThreadCpuTime {
  tid: number;
  role: ThreadRole;
  comm: string;
  micros: number;
}

/** What the threads of a case's process spent on a CPU during its measured interval. */
export interface ThreadCpu {
  wallSeconds: number;
  cpuSeconds: number;
  /** cpuSeconds ÷ wallSeconds: how many cores the process kept busy on average. */
  busyCores: number;
  /** All threads together. */
  microsPerEvent: number;
  roles: Record<ThreadRole, RoleCpu>;
  threads: ThreadCpuTime[];
  /** Threads that ended during the interval: their CPU time is missing from the numbers. */
  endedThreads: number;
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/**
 * The difference of two snapshots of a process's threads. A thread only in `after` started during
 * the interval and counts from zero; one only in `before` ended and is counted in endedThreads.
 */
export function summarizeThreadCpu(
  before: readonly ThreadSample[],
  after: readonly ThreadSample[],
  roleOf: (tid: number) => ThreadRole,
  events: number,
  wallSeconds: number,
): ThreadCpu {
  const startNs = new Map(before.map((sample) => [sample.tid, sample.ns]));
  const roleNs = new Map<ThreadRole, number>();
  const roleThreads = new Map<ThreadRole, number>();
  const threads: ThreadCpuTime[] = [];
  let totalNs = 0;
  for (const sample of after) {
    const ns = sample.ns - (startNs.get(sample.tid) ?? 0);
    const role = roleOf(sample.tid);
    totalNs += ns;
    roleNs.set(role, (roleNs.get(role) ?? 0) + ns);
    if (ns > 0) roleThreads.set(role, (roleThreads.get(role) ?? 0) + 1);
    threads.push({ tid: sample.tid, role, comm: sample.comm, micros: Math.round(ns / 1000) });
  }
  const alive = new Set(after.map((sample) => sample.tid));
  const perEvent = (ns: number) => round(ns / 1000 / Math.max(1, events), 3);
  const roles = Object.fromEntries(
    THREAD_ROLES.map((role) => [
      role,
      { threads: roleThreads.get(role) ?? 0, microsPerEvent: perEvent(roleNs.get(role) ?? 0) },
    ]),
  ) as Record<ThreadRole, RoleCpu>;
  return {
    wallSeconds: round(wallSeconds, 3),
    cpuSeconds: round(totalNs / 1e9, 3),
    busyCores: wallSeconds > 0 ? round(totalNs / 1e9 / wallSeconds, 2) : 0,
    microsPerEvent: perEvent(totalNs),
    roles,
    threads: threads.sort((a, b) => b.micros - a.micros),
    endedThreads: before.filter((sample) => !alive.has(sample.tid)).length,
  };
}

/** Snapshots this process's threads around a measured interval: start(), the work, stop(events). */
export class CpuMeter {
  readonly #roles: ThreadRoles;
  #before: ThreadSample[] = [];
  #startedMs = 0;

  constructor(roles: ThreadRoles) {
    this.#roles = roles;
  }

  start(): void {
    this.#before = readThreads();
    this.#startedMs = performance.now();
  }

  stop(events: number): ThreadCpu {
    const after = readThreads();
    const wallSeconds = (performance.now() - this.#startedMs) / 1000;
    return summarizeThreadCpu(this.#before, after, (tid) => this.#roles.roleOf(tid), events, wallSeconds);
  }
}
