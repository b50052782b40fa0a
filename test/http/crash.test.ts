import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HttpEventStore } from '../../src/api/http/client.js';
import { killAllServeChildren, spawnServe } from './child-server.js';

interface Acked {
  id: bigint;
  firstVersion: number;
  lastVersion: number;
  payloads: string[];
}

/** mulberry32: a small seeded PRNG, so a failing run can be replayed from its seed. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const dir = mkdtempSync(join(tmpdir(), 'ringstore-http-crash-'));
afterAll(() => {
  killAllServeChildren();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Appends batches from several concurrent writers until told to stop; records every batch that
 * got a 201. Requests cut off by the kill fail and are simply not recorded.
 */
async function writeUntil(
  url: string,
  stop: { now: boolean },
  random: () => number,
  cycle: number,
  acked: Acked[],
): Promise<void> {
  const client = new HttpEventStore(url);
  const writer = async (w: number): Promise<void> => {
    for (let seq = 0; !stop.now; seq++) {
      const id = BigInt(1 + Math.floor(random() * 40));
      const size = 1 + Math.floor(random() * 5);
      const payloads = Array.from({ length: size }, (_, i) => JSON.stringify({ cycle, w, seq, i }));
      try {
        const result = await client.put(
          'crash',
          'item',
          id,
          payloads.map((data) => ({ type: 'Put', data })),
        );
        acked.push({ id, firstVersion: result.firstVersion, lastVersion: result.lastVersion, payloads });
      } catch {
        return;
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, (_, w) => writer(w)));
}

describe('crash over HTTP', () => {
  it('every batch answered 201 survives repeated SIGKILLs of the server under load (seeded)', async () => {
    const seed = 5_0501;
    const random = seededRandom(seed);
    const acked: Acked[] = [];
    const perCycle: number[] = [];
    try {
      for (let cycle = 0; cycle < 4; cycle++) {
        const server = await spawnServe(dir, ['--log-level', 'info']);
        const stop = { now: false };
        const before = acked.length;
        let loadEnded = false;
        const load = writeUntil(server.url, stop, random, cycle, acked).finally(() => {
          loadEnded = true;
        });
        // Kill at a random moment after the first acknowledgement of this cycle, so every cycle
        // has acknowledged work at risk however slowly the server starts on a busy machine.
        while (acked.length === before && !loadEnded) await new Promise((resolve) => setTimeout(resolve, 5));
        await new Promise((resolve) => setTimeout(resolve, 50 + Math.floor(random() * 400)));
        server.child.kill('SIGKILL');
        await server.exited;
        stop.now = true;
        await load;
        perCycle.push(acked.length - before);
      }
      // Each cycle acknowledged work before its kill, or the test would prove nothing.
      expect(
        perCycle.every((n) => n > 0),
        `acked per cycle: ${perCycle.join(', ')}`,
      ).toBe(true);
      const server = await spawnServe(dir, ['--log-level', 'info']);
      const client = await HttpEventStore.connect(server.url);
      const decoder = new TextDecoder();
      for (const batch of acked) {
        const { events } = await client.get('crash', 'item', batch.id, {
          fromVersion: batch.firstVersion,
          toVersion: batch.lastVersion,
        });
        expect(events.map((e) => decoder.decode(e.data))).toEqual(batch.payloads);
      }
      // Batches are atomic: every stored event belongs to a batch stored whole.
      const all = await client.read('crash', { limit: 100_000 });
      const sizes = new Map<string, { expected: number; seen: number }>();
      for (const event of all.events) {
        const { cycle, w, seq } = JSON.parse(decoder.decode(event.data)) as Record<string, number>;
        const key = `${cycle}/${w}/${seq}`;
        const entry = sizes.get(key) ?? { expected: 0, seen: 0 };
        entry.seen++;
        sizes.set(key, entry);
      }
      for (const batch of acked) {
        const { cycle, w, seq } = JSON.parse(batch.payloads[0] as string) as Record<string, number>;
        expect(sizes.get(`${cycle}/${w}/${seq}`)?.seen).toBe(batch.payloads.length);
      }
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    } catch (err) {
      throw new Error(`crash test failed with seed ${seed}: ${(err as Error).message}`);
    }
  });
});
