import { readdirSync, readFileSync } from 'node:fs';

/**
 * On-CPU time per thread, from /proc/<pid>/task/<tid>/schedstat (Linux): its first field is the
 * nanoseconds the thread has run on a CPU. Unlike `--cpu-prof`, which samples wall time (a thread
 * blocked in Atomics.wait looks busy there), this counts only time actually spent on a core.
 */
export interface ThreadSample {
  tid: number;
  /** /proc/…/comm: Node 20 names every thread of the process `node`. */
  comm: string;
  ns: number;
}

/** ns on CPU of one thread (throws when the thread is gone). */
export function threadNs(pid: number | 'self', tid: number): number {
  return Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
}

/** µs on CPU of one thread. */
export function threadMicros(pid: number | 'self', tid: number): number {
  return threadNs(pid, tid) / 1000;
}

/** Every live thread of a process with its CPU time; a thread that ends while being read is skipped. */
export function readThreads(pid: number | 'self' = 'self'): ThreadSample[] {
  const samples: ThreadSample[] = [];
  for (const entry of readdirSync(`/proc/${pid}/task`)) {
    const tid = Number(entry);
    try {
      const ns = threadNs(pid, tid);
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      samples.push({ tid, comm, ns });
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return samples;
}

/** µs on CPU of all live threads of a process. */
export function processMicros(pid: number | 'self' = 'self'): number {
  let ns = 0;
  for (const sample of readThreads(pid)) ns += sample.ns;
  return ns / 1000;
}
