import type { FreshJob, FreshMessage } from './fresh.js';

/**
 * Entry point of a fresh probe process (forked by bench/fresh.ts). It loads only the probe it is
 * asked for, so what the process holds before the probe starts is Node plus that probe's modules.
 * It exits when its parent goes away, so a killed case leaves no probe behind.
 */
type ProbeRun = (input: never, report: (progress: unknown) => void) => Promise<unknown>;

const probes: Record<FreshJob['probe'], () => Promise<{ run: ProbeRun }>> = {
  open: () => import('./probes/open.js'),
  append: () => import('./probes/append.js'),
  readback: () => import('./probes/readback.js'),
};

function send(message: FreshMessage): Promise<void> {
  return new Promise((resolve) => process.send?.(message, () => resolve()));
}

async function main(job: FreshJob): Promise<void> {
  const { run } = await probes[job.probe]();
  const result = await run(job.input as never, (progress) => void send({ type: 'progress', progress }));
  await send({ type: 'result', result });
  process.exit(0);
}

process.once('disconnect', () => process.exit(1));
process.once('message', (job: FreshJob) => {
  main(job).catch(async (error: unknown) => {
    await send({
      type: 'error',
      error: error instanceof Error ? (error.stack ?? error.message) : String(error),
    });
    process.exit(1);
  });
});
