import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { RingStore } from '../../src/api/ring-store.js';
import type { StoredEvent } from '../../src/types.js';
import { compiledWorkerUrl } from '../../src/workers/worker-url.js';
import { crashEventData } from '../fixtures/crash-shape.js';
import { mulberry32 } from '../support/prng.js';

/**
 * Must show (issue 3): a child process appends under load with durability 'fsync' and reports every
 * acknowledged batch; the parent SIGKILLs it at random moments, and after all cycles reopens the
 * store and checks that every acknowledged batch is present exactly once and intact.
 */
const SEED = Number(process.env.RINGSTORE_CRASH_SEED ?? 0xc0a5_0003);
const CYCLES = Number(process.env.RINGSTORE_CRASH_CYCLES ?? 20);
const root = mkdtempSync(join(tmpdir(), 'ringstore-crash-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Ack {
  cycle: number;
  seq: number;
  id: number;
  firstVersion: number;
  firstPosition: number;
  events: number;
}

function runCycle(dir: string, cycle: number, killAfterMs: number, seed: number): Promise<Ack[]> {
  const script = fileURLToPath(compiledWorkerUrl('../fixtures/crash-appender.js', import.meta.url));
  const child = spawn(process.execPath, [script, dir, String(cycle), String(seed)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    if (out.length === 0 && chunk.startsWith('ready')) setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    out += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  const guard = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return new Promise((resolve, reject) => {
    child.on('exit', (code, signal) => {
      clearTimeout(guard);
      if (signal !== 'SIGKILL') {
        reject(new Error(`cycle ${cycle}: child ended with ${code ?? signal} before the kill: ${err}`));
        return;
      }
      const lines = out.split('\n');
      lines.pop(); // a line cut by the kill has no newline yet
      resolve(
        lines
          .filter((line) => line.startsWith('ack '))
          .map((line) => {
            const [cycleText, seq, id, firstVersion, firstPosition, events] = line
              .slice(4)
              .split(' ')
              .map(Number);
            return {
              cycle: cycleText!,
              seq: seq!,
              id: id!,
              firstVersion: firstVersion!,
              firstPosition: firstPosition!,
              events: events!,
            };
          }),
      );
    });
  });
}

describe('crash test: SIGKILL under load with durability fsync', () => {
  it('keeps every acknowledged batch exactly once and intact', async () => {
    const random = mulberry32(SEED);
    const dir = join(root, 'store');
    const acks: Ack[] = [];
    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      acks.push(
        ...(await runCycle(dir, cycle, 30 + Math.floor(random() * 250), Math.floor(random() * 2 ** 31))),
      );
    }
    const store = await RingStore.open({ dir });
    let lost = 0;
    try {
      const all: StoredEvent[] = [];
      for (let from = 0; ; ) {
        const page = await store.read('crash', { fromPosition: from, limit: 100_000, verifyCrc: true });
        all.push(...page.events);
        if (page.events.length === 0) break;
        from = page.nextPosition;
      }
      const batchOf = (event: StoredEvent) => new TextDecoder().decode(event.data).split('-e')[0]!;
      const copies = new Map<string, number>();
      for (const event of all) copies.set(batchOf(event), (copies.get(batchOf(event)) ?? 0) + 1);
      for (const ack of acks) {
        const tag = `c${ack.cycle}-s${ack.seq}`;
        const intact = Array.from({ length: ack.events }, (_, e) => {
          const event = all[ack.firstPosition + e];
          return (
            event !== undefined &&
            new TextDecoder().decode(event.data) === crashEventData(ack.cycle, ack.seq, e) &&
            event.aggregateId === BigInt(ack.id) &&
            event.version === ack.firstVersion + e
          );
        }).every(Boolean);
        if (!intact || copies.get(tag) !== ack.events) lost++;
      }
      console.log(
        `crash test: seed ${SEED}, ${CYCLES} cycles, ${acks.length} acknowledged batches checked, ${lost} lost, ${all.length} events stored`,
      );
    } finally {
      await store.close();
    }
    expect(acks.length).toBeGreaterThan(CYCLES);
    expect(lost).toBe(0);
  });
});
