import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { AppendInput } from './probes/append.js';
import type { OpenInput } from './probes/open.js';
import type { ReadbackInput } from './probes/readback.js';

/**
 * Runs a probe in a fresh Node process (bench/fresh-child.ts): what a store costs to open, or to
 * read from, is only meaningful in a process that has not written it. The job goes over IPC, the
 * probe answers over IPC; progress messages let the parent SIGKILL a probe in the middle of its work.
 */
export type FreshJob =
  | { probe: 'open'; input: OpenInput }
  | { probe: 'append'; input: AppendInput }
  | { probe: 'readback'; input: ReadbackInput };

export type FreshMessage =
  | { type: 'progress'; progress: unknown }
  | { type: 'result'; result: unknown }
  | { type: 'error'; error: string };

/** The compiled entry: beside this module in dist/, under dist/ when this module runs from source. */
function childScript(): string {
  const relative = import.meta.url.endsWith('.ts') ? '../dist/bench/fresh-child.js' : './fresh-child.js';
  return fileURLToPath(new URL(relative, import.meta.url));
}

interface Outcome {
  result?: unknown;
  /** The progress message the parent killed the probe at, when it did. */
  killedAt?: unknown;
}

/** A probe process that died of a signal nobody sent it (SIGABRT from a Node assertion, SIGSEGV). */
class ProbeAborted extends Error {}

function forkProbe(
  job: FreshJob,
  killWhen?: (progress: unknown) => boolean,
  killDelayMs = 0,
): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = fork(childScript(), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const outcome: Outcome = {};
    let error: string | undefined;
    child.on('message', (message: FreshMessage) => {
      if (message.type === 'result') outcome.result = message.result;
      else if (message.type === 'error') error = message.error;
      else if (killWhen?.(message.progress) === true && outcome.killedAt === undefined) {
        outcome.killedAt = message.progress;
        setTimeout(() => child.kill('SIGKILL'), killDelayMs);
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (error !== undefined) reject(new Error(`${job.probe} probe failed: ${error}`));
      else if (outcome.result !== undefined || outcome.killedAt !== undefined) resolve(outcome);
      else if (signal !== null)
        reject(new ProbeAborted(`${job.probe} probe died of ${signal} before its result`));
      else reject(new Error(`${job.probe} probe exited with code ${code} and no result`));
    });
    child.send(job);
  });
}

export interface Fresh<R> {
  answer: R;
  /** Why earlier runs of the probe died, when they did and it was run again (the rows say so). */
  aborts: string[];
}

/**
 * Runs a probe to the end in a fresh process and returns its answer. A probe that dies of a signal
 * before answering is run once more when `rerunAborted` (a read-only probe measures the same thing
 * again; the open after a crash would not, its first run has already recovered the store).
 */
export async function runFresh<R>(job: FreshJob, rerunAborted = true): Promise<Fresh<R>> {
  const aborts: string[] = [];
  for (;;) {
    try {
      const outcome = await forkProbe(job);
      if (outcome.result === undefined) throw new Error(`${job.probe} probe gave no result`);
      return { answer: outcome.result as R, aborts };
    } catch (error) {
      if (!(error instanceof ProbeAborted) || !rerunAborted || aborts.length > 0) throw error;
      aborts.push(error.message);
      process.stderr.write(`    ${error.message}; running it once more\n`);
    }
  }
}

/** The note a row gets when its probe had to be run again. */
export function abortNote(aborts: readonly string[]): string[] {
  return aborts.length === 0 ? [] : [`${aborts.join('; ')}: measured by a second fresh process`];
}

/**
 * Runs a probe that reports progress and SIGKILLs it `delayMs` after the first progress message
 * `until` accepts; resolves, once the process is gone, with that message. A probe that ends first
 * is an error.
 */
export async function killFreshWhen<P>(
  job: FreshJob,
  until: (progress: P) => boolean,
  delayMs = 0,
): Promise<P> {
  const outcome = await forkProbe(job, (progress) => until(progress as P), delayMs);
  if (outcome.killedAt === undefined) throw new Error(`${job.probe} probe ended before it was killed`);
  return outcome.killedAt as P;
}
