import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpEventStore } from '../../src/api/http/client.js';
import { parseServeConfig } from '../../src/cli/config.js';
import { openServeStore } from '../../src/cli/open-store.js';
import { type RunningService, startService } from '../../src/cli/serve.js';
import { eventStoreContract } from '../contract/event-store-contract.js';

const dirs: string[] = [];
function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ringstore-serve-'));
  dirs.push(dir);
  return dir;
}

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const services = new WeakMap<HttpEventStore, RunningService>();

async function serve(dir: string, flags: string[] = []): Promise<HttpEventStore> {
  const config = parseServeConfig(['--dir', dir, '--port', '0', '--log-level', 'silent', ...flags], {});
  const service = await startService(config, openServeStore);
  const client = await HttpEventStore.connect(service.url, { onClose: () => service.shutdown('test') });
  services.set(client, service);
  return client;
}

const dirOf = new WeakMap<HttpEventStore, string>();

eventStoreContract('HTTP API over the serve store (with restart)', {
  open: async () => {
    const dir = freshDir();
    const client = await serve(dir);
    dirOf.set(client, dir);
    return client;
  },
  reopen: async (store) => {
    const client = store as HttpEventStore;
    const dir = dirOf.get(client) as string;
    await client.close();
    const next = await serve(dir);
    dirOf.set(next, dir);
    return next;
  },
});

describe('ringstore serve', () => {
  it('shuts down cleanly: requests in flight finish, the store is closed, data survives a restart', async () => {
    const dir = freshDir();
    const client = await serve(dir);
    const service = services.get(client) as RunningService;
    const puts = Array.from({ length: 20 }, (_, i) =>
      client.put('d', 'a', BigInt(i + 1), [{ type: 'A', data: `e${i}` }]),
    );
    const results = await Promise.all(puts);
    await service.shutdown('test');
    await expect(fetch(`${service.url}/health`)).rejects.toThrow();
    const again = await serve(dir);
    const read = await again.read('d');
    expect(read.events.map((e) => e.position)).toEqual(
      results.map((r) => r.firstPosition).sort((a, b) => a - b),
    );
    await again.close();
  });

  it('exports the RingStore internals in /metrics: appends, generations, fsync latency, ring, CRC pool', async () => {
    // A pool whatever the core count (crc 'auto' computes CRCs inline on up to 2 cores).
    const client = await serve(freshDir(), ['--crc-threads', '1']);
    const service = services.get(client) as RunningService;
    await Promise.all(
      Array.from({ length: 10 }, (_, i) => client.put('m', 'a', BigInt(i + 1), [{ type: 'A', data: 'x' }])),
    );
    const text = await (await fetch(`${service.url}/metrics`)).text();
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value('ringstore_ring_bytes')).toBeGreaterThanOrEqual(65_536);
    // Prometheus conventions: stock process metrics under their own names, a build_info of 1.
    expect(value('process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(text).not.toMatch(/^ringstore_(process|nodejs)_/m);
    const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(text).toContain(
      `ringstore_build_info{version="${manifest.version}",node="${process.versions.node}"} 1`,
    );
    expect(value('ringstore_ring_used_bytes')).toBeGreaterThanOrEqual(0);
    expect(value('ringstore_store_fsyncs_total')).toBeGreaterThan(0);
    expect(value('ringstore_store_commits_total')).toBeGreaterThan(0);
    expect(value('ringstore_store_appended_batches_total')).toBe(10);
    expect(value('ringstore_crc_threads')).toBe(1);
    expect(value('ringstore_crc_utilization_ratio')).toBeGreaterThanOrEqual(0);
    expect(value('ringstore_http_appended_events_total')).toBe(10);
    expect(value('ringstore_store_appended_events_total')).toBe(10);
    expect(value('ringstore_store_appended_bytes_total')).toBe(10);
    expect(value('ringstore_store_generations_total')).toBeGreaterThanOrEqual(1);
    expect(value('ringstore_store_backpressure_total')).toBe(0);
    // Every fsync the writer made is in the histogram, and its seconds add up to the total.
    const fsyncs = value('ringstore_store_fsyncs_total');
    const observed = value('ringstore_store_fsync_duration_seconds_count');
    expect(observed).toBe(fsyncs);
    expect(value('ringstore_store_fsync_duration_seconds_bucket\\{le="\\+Inf"\\}')).toBe(observed);
    expect(value('ringstore_store_fsync_duration_seconds_sum')).toBeCloseTo(
      value('ringstore_store_fsync_seconds_total'),
      9,
    );
    expect(value('ringstore_store_fsync_seconds_total')).toBeGreaterThan(0);
    expect(value('ringstore_store_last_fsync_seconds')).toBeGreaterThan(0);
    await client.close();
  });

  it('refuses to start with an unreadable tokens file, before opening the store', async () => {
    const dir = join(freshDir(), 'never-created');
    const config = parseServeConfig(['--dir', dir, '--port', '0', '--tokens', join(dir, 'missing.json')], {});
    await expect(startService(config, openServeStore)).rejects.toMatchObject({ code: 'INVALID_OPTION' });
  });
});
