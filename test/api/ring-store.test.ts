import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/api/event-store.js';
import { openRingStore, RingStore, ringStoreThreads } from '../../src/api/ring-store.js';
import { chooseCrcMode } from '../../src/api/ring-store-options.js';
import { eventStoreContract } from '../contract/event-store-contract.js';

const root = mkdtempSync(join(tmpdir(), 'ringstore-api-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const dirOf = new WeakMap<EventStore, string>();

async function openAt(
  dir: string,
  options: Partial<Parameters<typeof RingStore.open>[0]> = {},
): Promise<RingStore> {
  const store = await RingStore.open({ dir, ringBytes: 1 << 20, ...options });
  dirOf.set(store, dir);
  return store;
}

// The inline variant also runs the writer's other idle wait strategy.
for (const crc of ['pool', 'inline'] as const) {
  const writerWait = crc === 'pool' ? 'blocking' : 'spin-then-block';
  eventStoreContract(`RingStore (crc ${crc}, writerWait ${writerWait})`, {
    open: () =>
      openAt(join(root, `contract-${crc}-${dirs++}`), {
        crc,
        writerWait,
        durability: crc === 'pool' ? 'fsync' : 'write',
      }),
    reopen: async (store) => {
      const dir = dirOf.get(store)!;
      await store.close();
      return openAt(dir, { crc, writerWait });
    },
  });
}

describe('RingStore options', () => {
  it('defaults, validates (naming the option) and freezes its options', async () => {
    const bad: [Record<string, unknown>, string][] = [
      [{}, 'dir'],
      [{ dir: root, durability: 'sometimes' }, 'durability'],
      [{ dir: root, crc: 'gpu' }, 'crc'],
      [{ dir: root, crcThreads: 0 }, 'crcThreads'],
      [{ dir: root, ringBytes: 100_000 }, 'ringBytes'],
      [{ dir: root, ringBytes: 1024 }, 'ringBytes'],
      [{ dir: root, generationBytes: -1 }, 'generationBytes'],
      [{ dir: root, backpressureTimeoutMs: 1.5 }, 'backpressureTimeoutMs'],
      [{ dir: root, handoffBytes: -1 }, 'handoffBytes'],
      [{ dir: root, handoffBytes: '32k' }, 'handoffBytes'],
      [{ dir: root, claimTimeoutMs: 0 }, 'claimTimeoutMs'],
      [{ dir: root, writerWait: 'async' }, 'writerWait'],
      [{ dir: root, colour: 'blue' }, 'colour'],
      // Cluster mode's options are checked before anything connects.
      [{ dir: root, cluster: { servers: 'nats://127.0.0.1:4222', nodeId: 'not an id' } }, 'nodeId'],
      [{ dir: root, cluster: { servers: [], nodeId: 'a' } }, 'servers'],
      [{ dir: root, cluster: { servers: 'nats://127.0.0.1:4222,not a url', nodeId: 'a' } }, 'servers'],
      [{ dir: root, cluster: { servers: 'nats://127.0.0.1:4222', nodeId: 'a', ttl: 5 } }, 'ttl'],
    ];
    for (const [options, option] of bad) {
      await expect(RingStore.open(options as never)).rejects.toMatchObject({
        code: 'INVALID_OPTION',
        details: { option },
      });
    }
    const store = await RingStore.open({ dir: join(root, 'defaults') });
    try {
      expect(store.options).toMatchObject({
        durability: 'fsync',
        crc: chooseCrcMode(availableParallelism()),
        crcThreads: 1,
        ringBytes: 16 * 1024 * 1024,
        generationBytes: 4096,
        handoffBytes: 32 * 1024,
        writerWait: 'blocking',
      });
      expect(Object.isFrozen(store.options)).toBe(true);
    } finally {
      await store.close();
    }
  });
});

describe('RingStore embedded API', () => {
  it('works through the facade of the original notes and reads its own writes', async () => {
    const store = await openAt(join(root, `facade-${dirs++}`));
    try {
      const person = store.domain('namespace').aggregate('person');
      const id = store.newKey();
      const first = await person
        .instance(id)
        .put({ type: 'Registered', data: 'ada' }, { type: 'NameChanged', data: 'Ada' });
      expect(first).toMatchObject({ firstVersion: 1, lastVersion: 2, durability: 'fsync', replayed: false });
      expect((await person.instance(id).get()).version).toBe(2);
      await expect(person.instance(id).put([{ type: 'X' }], { expectedVersion: 1 })).rejects.toMatchObject({
        code: 'VERSION_CONFLICT',
        details: { actualVersion: 2 },
      });
      expect((await store.get('namespace', 'person', id)).events.map((e) => e.type)).toEqual([
        'Registered',
        'NameChanged',
      ]);
      expect((await store.domain('namespace').read()).events).toHaveLength(2);
      expect(store.stats().commits).toBeGreaterThan(0);
    } finally {
      await store.close();
    }
  });

  it('groups many puts in flight into few commits and keeps per-instance order', async () => {
    const store = await openAt(join(root, `group-${dirs++}`));
    try {
      const puts: Promise<unknown>[] = [];
      for (let i = 0; i < 2000; i++)
        puts.push(store.put('d', 'a', 1 + (i % 10), [{ type: 'E', data: `${i}` }]));
      await Promise.all(puts);
      const { stats } = { stats: store.stats() };
      expect(stats.batches).toBe(2000);
      expect(stats.commits).toBeLessThan(2000);
      for (let id = 1; id <= 10; id++) {
        const { events } = await store.get('d', 'a', id);
        expect(events.map((e) => Number(new TextDecoder().decode(e.data)))).toEqual(
          Array.from({ length: 200 }, (_, k) => id - 1 + k * 10),
        );
      }
    } finally {
      await store.close();
    }
  });

  it('rejects a batch larger than the ring allows with BATCH_TOO_LARGE', async () => {
    const store = await openAt(join(root, `large-${dirs++}`), { ringBytes: 64 * 1024 });
    try {
      const events = Array.from({ length: 2 }, () => ({ type: 'Big', data: new Uint8Array(30_000) }));
      await expect(store.put('d', 'a', 1, events)).rejects.toMatchObject({ code: 'BATCH_TOO_LARGE' });
      await store.put('d', 'a', 1, [{ type: 'Small', data: new Uint8Array(30_000) }]);
    } finally {
      await store.close();
    }
  });
});

describe('RingStore on the main thread', () => {
  it('never blocks it: no Atomics.wait from open to close, backpressure and producer threads included', async () => {
    const wait = Atomics.wait;
    Atomics.wait = () => {
      throw new Error('Atomics.wait on the main thread');
    };
    try {
      const store = await openAt(join(root, `no-wait-${dirs++}`), { ringBytes: 64 * 1024 });
      store.producer();
      const puts = Array.from({ length: 40 }, (_, i) =>
        store.put('d', 'a', 1 + (i % 4), [{ type: 'E', data: new Uint8Array(5000) }]),
      );
      await Promise.all(puts);
      expect((await store.get('d', 'a', 1)).version).toBe(10);
      await store.close();
    } finally {
      Atomics.wait = wait;
    }
  });
});

describe('RingStore pipeline details', () => {
  it('stores what was put even when the caller reuses its event objects while the put waits for room', async () => {
    // A 64 KiB ring holds ~200 of these puts: the rest wait in the producer's queue, whose events
    // the producer owns (checked in place otherwise: encoded before put returns).
    const store = await RingStore.open({ dir: join(root, `reuse-${dirs++}`), ringBytes: 64 * 1024 });
    try {
      const event = { type: 'E', data: new Uint8Array(300) };
      const events = [event];
      const puts: Promise<unknown>[] = [];
      for (let i = 0; i < 600; i++) {
        event.data = new Uint8Array(300).fill(i & 255);
        event.type = `E${i}`;
        puts.push(store.put('d', 'a', 1, events));
      }
      await Promise.all(puts);
      const { events: stored } = await store.get('d', 'a', 1);
      expect(stored.map((e) => e.type)).toEqual(Array.from({ length: 600 }, (_, i) => `E${i}`));
      expect(stored.every((e, i) => e.data.every((b) => b === (i & 255)))).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('encodes the bytes it checked, even from a getter that grows data after the check', async () => {
    const store = await RingStore.open({ dir: join(root, `getters-${dirs++}`), ringBytes: 1 << 20 });
    try {
      // Each read of `data` returns a longer array; the last ones break the 65,535-byte limit.
      let reads = 0;
      const growing = {
        type: 'Grows',
        get data() {
          reads++;
          return new Uint8Array(reads === 1 ? 1 : 70_000).fill(7);
        },
      };
      await store.put('d', 'a', 1, [growing]);
      // An array whose byteLength lies: measured by its real length, so refused, never copied
      // past its record.
      const shadowed = new Uint8Array(70_000);
      Object.defineProperty(shadowed, 'byteLength', { value: 1 });
      await expect(store.put('d', 'a', 1, [{ type: 'Lies', data: shadowed }])).rejects.toMatchObject({
        code: 'EVENT_TOO_LARGE',
      });
      const { events } = await store.get('d', 'a', 1);
      expect(events.map((e) => [e.type, Array.from(e.data)])).toEqual([['Grows', [7]]]);
      expect(store.failed).toBe(false);
    } finally {
      await store.close();
    }
  });

  it('stores a detached data array as the empty data it measured, and goes on', async () => {
    const store = await RingStore.open({ dir: join(root, `detached-${dirs++}`), ringBytes: 1 << 20 });
    try {
      const buffer = new ArrayBuffer(8);
      const detached = new Uint8Array(buffer);
      structuredClone(buffer, { transfer: [buffer] });
      await store.put('d', 'a', 1, [{ type: 'Detached', data: detached }]);
      // A put after it settles at once, not after the claim watch has failed the store.
      await store.put('d', 'a', 1, [{ type: 'After', data: new Uint8Array([1, 2]) }]);
      const { events } = await store.get('d', 'a', 1);
      expect(events.map((e) => [e.type, Array.from(e.data)])).toEqual([
        ['Detached', []],
        ['After', [1, 2]],
      ]);
      expect(store.failed).toBe(false);
    } finally {
      await store.close();
    }
  });

  it('stores what was put even when the caller refills its data bytes while the put waits for room', async () => {
    // The same Uint8Array for every put: a put that waits for ring space must not encode whatever
    // the array holds by then (nor a CRC computed from the bytes it held at the call).
    const store = await RingStore.open({ dir: join(root, `refill-${dirs++}`), ringBytes: 64 * 1024 });
    try {
      const data = new Uint8Array(300);
      const metadata = new Uint8Array(20);
      const puts: Promise<unknown>[] = [];
      for (let i = 0; i < 600; i++) {
        data.fill(i & 255);
        metadata.fill((i + 1) & 255);
        puts.push(store.put('d', 'a', 1, [{ type: 'E', data, metadata }]));
      }
      await Promise.all(puts);
      const { events: stored } = await store.get('d', 'a', 1);
      expect(stored).toHaveLength(600);
      const wrong = stored.findIndex(
        (e, i) => !e.data.every((b) => b === (i & 255)) || !e.metadata.every((b) => b === ((i + 1) & 255)),
      );
      expect(wrong).toBe(-1);
    } finally {
      await store.close();
    }
  });

  it("writes no zeros ahead of its files with durability 'none' (nothing syncs per commit)", async () => {
    const dir = join(root, `no-prealloc-${dirs++}`);
    const store = await RingStore.open({ dir, durability: 'none' });
    try {
      for (let i = 0; i < 20; i++)
        await store.put('d', 'a', 1, [{ type: 'A', data: new Uint8Array(100).fill(i) }]);
    } finally {
      await store.close();
    }
    // 16-byte segment header, then 20 payloads of 100 bytes; index records of 80 + 12 bytes.
    expect(statSync(join(dir, 'd', 'a.0')).size).toBe(16 + 20 * 100);
    expect(statSync(join(dir, 'd', 'index')).size).toBe(20 * 92);
  });

  it("with durability 'fsync', keeps at least half a lead of zeros ahead while the writer is idle", async () => {
    const dir = join(root, `zeros-ahead-${dirs++}`);
    const store = await RingStore.open({ dir, durability: 'fsync' });
    // 16-byte segment header, then 100 payloads of 1,000 bytes: past the first extent of 64 KiB.
    // The lead is as many bytes as the file holds; appends alone would leave 128 KiB - dataEnd.
    const dataEnd = 16 + 100 * 1000;
    const halfLead = dataEnd / 2;
    try {
      for (let i = 0; i < 100; i++)
        await store.put('d', 'a', 1, [{ type: 'A', data: new Uint8Array(1000).fill(i) }]);
      // The writer thread writes them between commits, soon.
      const zerosAhead = () => statSync(join(dir, 'd', 'a.0')).size - dataEnd;
      for (let turn = 0; turn < 500 && zerosAhead() < halfLead; turn++)
        await new Promise((resolve) => setTimeout(resolve, 10));
      expect(zerosAhead()).toBeGreaterThanOrEqual(halfLead);
      expect(zerosAhead()).toBeLessThanOrEqual(2 * dataEnd);
    } finally {
      await store.close();
    }
    const reopened = await RingStore.open({ dir, durability: 'fsync' });
    try {
      const { events } = await reopened.get('d', 'a', 1, { verifyCrc: true });
      expect(events.map((e) => e.data[999])).toEqual(Array.from({ length: 100 }, (_, i) => i));
    } finally {
      await reopened.close();
    }
  });

  it('runs the whole pipeline across the 2^32 cursor wrap and packs small generations', async () => {
    const store = await openRingStore(
      { dir: join(root, `wrap-${dirs++}`), ringBytes: 64 * 1024, generationBytes: 256, durability: 'none' },
      { initialCursor: -8192 },
    );
    try {
      const results = await Promise.all(
        Array.from({ length: 400 }, (_, i) =>
          store.put('d', 'a', 1 + (i % 8), [{ type: 'E', data: new Uint8Array(300).fill(i & 255) }]),
        ),
      );
      const { ring } = ringStoreThreads(store);
      expect(ring.committedCursor()).toBeGreaterThan(0); // wrapped from negative
      // metrics(): what /metrics reports, read through the store itself.
      const metrics = store.metrics();
      expect(metrics).toMatchObject({
        appendedBatches: 400,
        appendedEvents: 400,
        appendedBytes: 400 * 300,
        commits: store.stats().commits,
        ringBytes: 64 * 1024,
        crcThreads: store.options.crc === 'pool' ? store.options.crcThreads : 0,
      });
      expect(metrics.ringUsedBytes).toBeGreaterThanOrEqual(0);
      expect(metrics.ringUsedBytes).toBeLessThanOrEqual(64 * 1024);
      expect(metrics.caches).toEqual(store.cacheStats());
      expect(new Set(results.map((r) => r.generation)).size).toBeGreaterThan(store.stats().commits);
      for (let id = 1; id <= 8; id++) {
        const { events } = await store.get('d', 'a', id, { verifyCrc: true });
        expect(events.map((e) => e.data[0])).toEqual(
          Array.from({ length: 50 }, (_, k) => (id - 1 + k * 8) & 255),
        );
      }
    } finally {
      await store.close();
    }
  });
});
