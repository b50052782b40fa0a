import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HttpEventStore } from '../../src/api/http/client.js';
import { killAllServeChildren, spawnServe } from './child-server.js';

const dir = mkdtempSync(join(tmpdir(), 'ringstore-http-overload-'));
afterAll(() => {
  killAllServeChildren();
  rmSync(dir, { recursive: true, force: true });
});

/** The payload of instance `id`: 20 000 bytes derived from the id, so every read can be checked. */
function payload(id: number): Buffer {
  const seed = createHash('sha256').update(String(id)).digest();
  return Buffer.alloc(20_000, seed);
}

async function residentBytes(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const match = /^process_resident_memory_bytes (\d+)/m.exec(text);
  return Number(match?.[1] ?? Number.NaN);
}

describe('overload over HTTP', () => {
  it('answers 503 + Retry-After far above capacity, keeps memory bounded, and every 201 is durable', async () => {
    // A 64 KiB ring holds three 20 KB batches at a time; appends wait 20 ms for room, then get 503.
    const server = await spawnServe(dir, [
      '--ring-bytes',
      '65536',
      '--backpressure-timeout-ms',
      '20',
      '--durability',
      'fsync',
      '--log-level',
      'info',
    ]);
    const baseline = await residentBytes(server.url);
    const accepted: number[] = [];
    const statuses = new Map<number, number>();
    let missingRetryAfter = 0;
    let nextId = 1;
    let offeredBytes = 0;
    let peak = baseline;
    const deadline = Date.now() + 3000;
    const body = (id: number) =>
      JSON.stringify({ events: [{ type: 'Blob', dataBase64: payload(id).toString('base64') }] });
    const connection = async (): Promise<void> => {
      while (Date.now() < deadline) {
        const id = nextId++;
        const text = body(id);
        offeredBytes += text.length;
        const response = await fetch(`${server.url}/v1/domains/load/aggregates/blob/${id}/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: text,
        });
        await response.arrayBuffer();
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        if (response.status === 201) accepted.push(id);
        if (response.status === 503 && response.headers.get('retry-after') === null) missingRetryAfter++;
      }
    };
    const sampler = (async () => {
      while (Date.now() < deadline) {
        peak = Math.max(peak, await residentBytes(server.url));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    await Promise.all([...Array.from({ length: 128 }, connection), sampler]);
    const summary = JSON.stringify({
      statuses: Object.fromEntries(statuses),
      offeredMb: offeredBytes / 2 ** 20,
      peakMb: peak / 2 ** 20,
      baselineMb: baseline / 2 ** 20,
    });

    expect([...statuses.keys()].sort(), summary).toEqual([201, 503]);
    expect(statuses.get(503) as number, summary).toBeGreaterThan(100);
    expect(accepted.length, summary).toBeGreaterThan(10);
    expect(missingRetryAfter).toBe(0);
    console.log(`overload over HTTP: ${summary}`);
    // Bounded: what the server holds is the ring, the bodies in flight (128 × ~27 KB) and heap
    // headroom, whatever the offered load; a server that queued work would grow with it.
    expect(peak - baseline, summary).toBeLessThan(100 * 2 ** 20);

    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    const reopened = await spawnServe(dir, ['--log-level', 'info']);
    const client = await HttpEventStore.connect(reopened.url);
    for (const id of accepted) {
      const { version, events } = await client.get('load', 'blob', id);
      expect(version).toBe(1);
      expect(Buffer.from(events[0]?.data ?? []).equals(payload(id))).toBe(true);
    }
    // Nothing answered 503 was stored: the domain holds exactly the accepted batches.
    const all = await client.read('load', { limit: 100_000 });
    expect(all.events.map((e) => Number(e.aggregateId)).sort((a, b) => a - b)).toEqual(
      [...accepted].sort((a, b) => a - b),
    );
    reopened.child.kill('SIGTERM');
    expect(await reopened.exited).toBe(0);
  });
});
