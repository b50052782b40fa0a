import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { awaitWriterReady } from '../../src/api/ring-engine.js';
import {
  openRingStore,
  RingStore,
  type RingStoreOptions,
  ringStoreThreads,
} from '../../src/api/ring-store.js';
import type { PutResult } from '../../src/types.js';
import { compiledWorkerUrl } from '../../src/workers/worker-url.js';
import { CRASH_ON_DOMAIN_ENV, FAIL_SYNC_AFTER_ENV } from '../fixtures/fault-env.js';
import type { PutOutcome } from '../fixtures/ring-store-plan.js';

const root = mkdtempSync(join(tmpdir(), 'ringstore-failure-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const fresh = (name: string) => join(root, `${name}-${dirs++}`);

async function settle<T>(promise: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; code: string }> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    return { ok: false, code: (error as { code: string }).code };
  }
}

/** Runs `open` with `name` set in the environment that the threads it starts copy. */
async function withEnv<T>(name: string, value: string, open: () => Promise<T>): Promise<T> {
  process.env[name] = value;
  try {
    return await open();
  } finally {
    delete process.env[name];
  }
}

/** A store whose writer thread's fsyncs fail (EIO) after `allowed` of them succeeded. */
function openFailingSyncs(options: RingStoreOptions, allowed: number): Promise<RingStore> {
  return withEnv(FAIL_SYNC_AFTER_ENV, String(allowed), () =>
    openRingStore(options, {
      writerScript: compiledWorkerUrl('../fixtures/faulty-writer-worker.js', import.meta.url),
    }),
  );
}

describe('RingStore failure handling', () => {
  it('fails pending and later puts with STORE_FAILED when the writer thread dies, and closes without hanging', async () => {
    const dir = fresh('writer-dies');
    const store = await RingStore.open({ dir, durability: 'fsync' });
    const acked = await store.put('d', 'a', 1, [{ type: 'Before', data: 'kept' }]);
    const inFlight = Array.from({ length: 50 }, (_, i) =>
      settle(store.put('d', 'a', 2, [{ type: 'E', data: `${i}` }])),
    );
    await ringStoreThreads(store).writer.terminate();
    const outcomes = await Promise.all(inFlight);
    for (const outcome of outcomes) {
      if (!outcome.ok) expect(outcome.code).toBe('STORE_FAILED');
    }
    expect(store.failed).toBe(true);
    expect(await settle(store.put('d', 'a', 3, [{ type: 'After' }]))).toEqual({
      ok: false,
      code: 'STORE_FAILED',
    });
    await store.close();
    const reopened = await RingStore.open({ dir });
    try {
      const { events } = await reopened.get('d', 'a', 1);
      expect(events.map((e) => [e.type, e.generation])).toEqual([['Before', acked.generation]]);
      const acknowledged = outcomes.filter((o) => o.ok).length;
      expect((await reopened.get('d', 'a', 2)).version).toBeGreaterThanOrEqual(acknowledged);
    } finally {
      await reopened.close();
    }
  });

  it('also fails the puts of producer threads when the writer dies, without hanging them', async () => {
    const store = await RingStore.open({ dir: fresh('writer-dies-threads'), durability: 'fsync' });
    const puts = Array.from({ length: 2000 }, (_, i) => ({
      domain: 'd',
      aggregateType: 't',
      id: BigInt(1 + (i % 20)),
      events: [{ type: 'E', data: `${i}` }],
      options: undefined,
    }));
    const worker = new Worker(compiledWorkerUrl('../fixtures/ring-store-producer.js', import.meta.url), {
      workerData: { handle: store.producer(), puts, inFlight: 32 },
    });
    const outcomes = new Promise<PutOutcome[]>((resolve, reject) => {
      worker.on('message', (message: { type: string; outcomes: PutOutcome[] }) => resolve(message.outcomes));
      worker.on('error', reject);
    });
    const firstCommit = new Promise<void>((resolve) => store.watch(() => resolve()));
    await firstCommit;
    await ringStoreThreads(store).writer.terminate();
    const settled = await outcomes;
    await worker.terminate();
    const codes = new Set(settled.map((o) => (o.ok ? 'ok' : o.code)));
    expect([...codes].every((code) => code === 'ok' || code === 'STORE_FAILED')).toBe(true);
    expect(codes.has('STORE_FAILED')).toBe(true);
    await store.close();
  });

  it('fails only the batches of a crashed CRC worker; the pool replaces it', async () => {
    const store = await withEnv(CRASH_ON_DOMAIN_ENV, 'poison', () =>
      openRingStore(
        { dir: fresh('crc-crash'), crc: 'pool', crcThreads: 1 },
        { crcScript: compiledWorkerUrl('../fixtures/crashing-crc-worker.js', import.meta.url) },
      ),
    );
    try {
      await store.put('good', 'a', 1, [{ type: 'A' }]);
      expect(await settle(store.put('poison', 'a', 1, [{ type: 'A' }]))).toEqual({
        ok: false,
        code: 'INTERNAL',
      });
      const after = await Promise.all(
        Array.from({ length: 20 }, (_, i) => store.put('good', 'a', 1, [{ type: `B${i}` }])),
      );
      expect(after.map((r) => r.firstVersion)).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
      expect(store.stats().crcWorkersLost).toBe(1);
      expect(store.failed).toBe(false);
      expect(store.hasDomain('poison')).toBe(false);
    } finally {
      await store.close();
    }
  });

  it('fails the store, instead of hanging, when a producer thread dies between claim and publish', async () => {
    const dir = fresh('claim-dies');
    const store = await RingStore.open({ dir, claimTimeoutMs: 200 });
    try {
      const before = await store.put('d', 'a', 1, [{ type: 'Before', data: 'kept' }]);
      const dying = new Worker(compiledWorkerUrl('../fixtures/claim-and-exit.js', import.meta.url), {
        workerData: store.producer(),
      });
      await new Promise((resolve) => dying.once('exit', resolve));
      // This put sits behind the record that will never be published: it fails (STORE_FAILED, not
      // BACKPRESSURE) once the writer gave up on that record, and so does the store.
      await expect(store.put('d', 'a', 1, [{ type: 'After' }])).rejects.toMatchObject({
        code: 'STORE_FAILED',
        message: expect.stringContaining('claimed ring space and did not publish it'),
      });
      expect(store.failed).toBe(true);
      await expect(store.put('d', 'a', 2, [{ type: 'Later' }])).rejects.toMatchObject({
        code: 'STORE_FAILED',
      });
      await store.close();
      const reopened = await RingStore.open({ dir });
      try {
        const { version, events } = await reopened.get('d', 'a', 1);
        expect(version).toBe(before.lastVersion);
        expect(events.map((e) => e.type)).toEqual(['Before']);
      } finally {
        await reopened.close();
      }
    } finally {
      await store.close();
    }
  });

  it('fails the store when an fsync fails: nothing more is acknowledged, acknowledged batches survive', async () => {
    const dir = fresh('fsync-fails');
    const store = await openFailingSyncs({ dir, durability: 'fsync' }, 6);
    const acked: PutResult[] = [];
    let failedAt = -1;
    for (let i = 0; i < 40; i++) {
      const outcome = await settle(store.put('d', 'a', 1, [{ type: 'E', data: `${i}` }]));
      if (outcome.ok) {
        expect(failedAt).toBe(-1);
        acked.push(outcome.value);
      } else {
        expect(outcome.code).toBe('STORE_FAILED');
        if (failedAt < 0) failedAt = i;
      }
    }
    expect(failedAt).toBeGreaterThanOrEqual(0);
    expect(store.failed).toBe(true);
    await store.close();
    const reopened = await RingStore.open({ dir });
    try {
      const { events } = await reopened.get('d', 'a', 1);
      expect(events.slice(0, acked.length).map((e) => new TextDecoder().decode(e.data))).toEqual(
        acked.map((_, i) => `${i}`),
      );
    } finally {
      await reopened.close();
    }
  });
  it('reports an fsync failure during close() instead of closing quietly', async () => {
    // Walk the point of failure through every sync of open, one put (durability 'none') and close.
    const seen: string[] = [];
    for (let allowed = 0; allowed < 16; allowed++) {
      const opened = await settle(
        openFailingSyncs({ dir: fresh('close-fsync'), durability: 'none' }, allowed),
      );
      if (!opened.ok) {
        seen.push(`open:${opened.code}`);
        continue;
      }
      const store = opened.value;
      const put = await settle(store.put('d', 'a', 1, [{ type: 'E', data: 'x' }]));
      const closed = await settle(store.close());
      seen.push(`put:${put.ok ? 'ok' : put.code} close:${closed.ok ? 'ok' : closed.code}`);
    }
    expect(seen).toContain('put:ok close:STORE_FAILED');
    expect(seen.at(-1)).toBe('put:ok close:ok');
    expect(
      seen.every((s) => /^(open:STORE_FAILED|put:(ok|STORE_FAILED) close:(ok|STORE_FAILED))$/.test(s)),
    ).toBe(true);
  });
});

describe('RingStore and the writer thread protocol', () => {
  it('fails the store with STORE_FAILED on a message from the writer thread that is not in the protocol', async () => {
    const store = await RingStore.open({ dir: fresh('unknown-message'), durability: 'none' });
    await store.put('d', 'a', 1, [{ type: 'Before' }]);
    expect(store.failed).toBe(false);
    // The message arrives exactly as one posted by the writer thread would (a 'message' event).
    ringStoreThreads(store).writer.emit('message', { type: 'compact', generation: 3 });
    expect(store.failed).toBe(true);
    await expect(store.put('d', 'a', 1, [{ type: 'After' }])).rejects.toMatchObject({
      code: 'STORE_FAILED',
      message: expect.stringContaining('unexpected message after start-up (type "compact")'),
    });
    await store.close();
  });

  it("fails on a start-up message other than 'ready' or 'open-failed', and on one without a type", async () => {
    for (const [message, type] of [
      [{ type: 'commit', committedCursor: 0 }, '"commit"'],
      [{ type: 'hello' }, '"hello"'],
      [42, 'a number without a type'],
      [null, 'a null without a type'],
    ] as const) {
      const writer = new EventEmitter();
      const ready = awaitWriterReady(writer);
      writer.emit('message', message);
      await expect(ready).rejects.toMatchObject({
        code: 'STORE_FAILED',
        message: `the writer thread sent an unexpected message before 'ready' (type ${type})`,
      });
      expect(writer.listenerCount('message')).toBe(0);
    }
    const writer = new EventEmitter();
    const ready = awaitWriterReady(writer);
    writer.emit('message', { type: 'ready', generation: 0, recovery: [], indexRebuilds: [] });
    await expect(ready).resolves.toEqual({ recovery: [], indexRebuilds: [] });
    const failed = new EventEmitter();
    const opening = awaitWriterReady(failed);
    failed.emit('message', { type: 'open-failed', error: { code: 'STORE_LOCKED', message: 'x' } });
    await expect(opening).rejects.toMatchObject({ code: 'STORE_LOCKED', message: 'x' });
  });
});

describe('RingStore backpressure', () => {
  const big = () => [{ type: 'Big', data: new Uint8Array(20_000) }];

  it('rejects with BACKPRESSURE when the ring stays full past backpressureTimeoutMs', async () => {
    const store = await RingStore.open({ dir: fresh('bp'), ringBytes: 64 * 1024, backpressureTimeoutMs: 0 });
    try {
      const outcomes = await Promise.all(
        Array.from({ length: 10 }, (_, i) => settle(store.put('d', 'a', i + 1, big()))),
      );
      const codes = outcomes.map((o) => (o.ok ? 'ok' : o.code));
      expect(codes.filter((c) => c === 'ok').length).toBeGreaterThanOrEqual(1);
      expect(codes.filter((c) => c === 'BACKPRESSURE').length).toBeGreaterThanOrEqual(1);
      expect(codes.every((c) => c === 'ok' || c === 'BACKPRESSURE')).toBe(true);
      // BACKPRESSURE means "retry later": once the writer has reclaimed the space, puts go in again.
      let retried: { ok: boolean } = { ok: false };
      for (let attempt = 0; attempt < 200 && !retried.ok; attempt++) {
        retried = await settle(store.put('d', 'a', 100, big()));
        if (!retried.ok) await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(retried.ok).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('waits for room when the timeout allows it, and bounds the queue of waiting puts', async () => {
    const store = await RingStore.open({ dir: fresh('bp-wait'), ringBytes: 64 * 1024, maxWaitingPuts: 5 });
    try {
      const outcomes = await Promise.all(
        Array.from({ length: 12 }, (_, i) => settle(store.put('d', 'a', i + 1, big()))),
      );
      const codes = outcomes.map((o) => (o.ok ? 'ok' : o.code));
      expect(codes.filter((c) => c === 'ok').length).toBeGreaterThanOrEqual(6);
      expect(codes.slice(-3)).toEqual(['BACKPRESSURE', 'BACKPRESSURE', 'BACKPRESSURE']);
      const patient = await Promise.all(
        Array.from({ length: 5 }, (_, i) => store.put('d', 'b', i + 1, big())),
      );
      expect(patient).toHaveLength(5);
    } finally {
      await store.close();
    }
  });
});

describe('RingStore lifecycle', () => {
  it('lets the process exit after close(), with puts from the main thread and a producer thread', () => {
    const script = fileURLToPath(compiledWorkerUrl('../fixtures/ring-store-lifecycle.js', import.meta.url));
    const child = spawnSync(process.execPath, [script, fresh('lifecycle')], {
      timeout: 30_000,
      encoding: 'utf8',
    });
    expect(child.error).toBeUndefined();
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    expect(child.stdout.trim()).toBe('closed 200 puts');
  });
});
