import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/api/event-store.js';
import { FaultInjectingFileIO } from '../../src/storage/fault-io.js';
import { StorageEngine } from '../../src/storage/storage-engine.js';
import { eventStoreContract } from '../contract/event-store-contract.js';

const root = mkdtempSync(join(tmpdir(), 'ringstore-engine-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const dirs = new WeakMap<EventStore, string>();

function openFresh(): EventStore {
  const dir = join(root, `store-${++counter}`);
  const store = StorageEngine.open(dir);
  dirs.set(store, dir);
  return store;
}

eventStoreContract('StorageEngine (real files)', {
  open: async () => openFresh(),
  reopen: async (store) => {
    const dir = dirs.get(store)!;
    await store.close();
    const again = StorageEngine.open(dir);
    dirs.set(again, dir);
    return again;
  },
});

describe('StorageEngine', () => {
  it('shares one append call (one group commit) between puts made in the same turn', async () => {
    const io = new FaultInjectingFileIO();
    const store = StorageEngine.open('/s', { io });
    await store.put('d', 'a', 1n, [{ type: 'A', data: 'warm-up' }]);
    const before = io.operations;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        store.put('d', 'a', BigInt(i + 2), [{ type: 'A', data: `e${i}` }]),
      ),
    );
    expect(new Set(results.map((r) => r.generation)).size).toBe(1);
    // one data write + fdatasync, one index write + fdatasync
    expect(io.operations - before).toBe(4);
    expect((await store.read('d')).events).toHaveLength(21);
    await store.close();
  });

  it('writes zeros ahead of its files only when its commits fdatasync, and reads the same either way', async () => {
    const sizes = async (durability: 'fsync' | 'none', reopenWith: 'fsync' | 'none') => {
      const dir = join(root, `prealloc-${++counter}`);
      let store = StorageEngine.open(dir, { durability });
      for (let i = 0; i < 20; i++)
        await store.put('d', 'a', 1n, [{ type: 'A', data: new Uint8Array(100).fill(i) }]);
      await store.close();
      const grown = {
        data: statSync(join(dir, 'd', 'a.0')).size,
        index: statSync(join(dir, 'd', 'index')).size,
      };
      store = StorageEngine.open(dir, { durability: reopenWith });
      await store.put('d', 'a', 1n, [{ type: 'A', data: new Uint8Array(100).fill(20) }]);
      const { events } = await store.get('d', 'a', 1n);
      await store.close();
      const after = {
        data: statSync(join(dir, 'd', 'a.0')).size,
        index: statSync(join(dir, 'd', 'index')).size,
      };
      return { grown, after, events };
    };
    // 16-byte segment header, then 20 payloads of 100 bytes; index records of 80 + 12 bytes.
    const unsynced = await sizes('none', 'fsync');
    expect(unsynced.grown).toEqual({ data: 16 + 20 * 100, index: 20 * 92 });
    expect(unsynced.after.data).toBeGreaterThanOrEqual(64 * 1024);
    const synced = await sizes('fsync', 'none');
    expect(synced.grown.data).toBeGreaterThanOrEqual(64 * 1024);
    expect(synced.grown.index).toBeGreaterThanOrEqual(64 * 1024);
    expect(synced.after).toEqual(synced.grown);
    for (const { events } of [unsynced, synced]) {
      expect(events.map((e) => e.data[0])).toEqual(Array.from({ length: 21 }, (_, i) => i));
    }
  });

  it('rolls data segments without splitting a batch and reads across them after reopen', async () => {
    const io = new FaultInjectingFileIO();
    let store = StorageEngine.open('/s', { io, segmentBytes: 100 });
    for (let i = 0; i < 10; i++) {
      await store.put('d', 'a', 1n, [
        { type: 'A', data: new Uint8Array(30).fill(i) },
        { type: 'B', data: new Uint8Array(30).fill(i + 100) },
      ]);
    }
    await store.close();
    expect(io.listFiles('/s/d').filter((f) => /\/a\.\d+$/.test(f))).toHaveLength(10);
    store = StorageEngine.open('/s', { io, segmentBytes: 100 });
    const { events } = await store.get('d', 'a', 1n, { verifyCrc: true });
    expect(events).toHaveLength(20);
    expect(events.map((e) => e.data[0])).toEqual(
      Array.from({ length: 20 }, (_, k) => (k % 2 ? 100 : 0) + (k >> 1)),
    );
    await store.close();
  });
});

describe('StorageEngine watchers', () => {
  it('a throwing listener does not fail the put it is told about', async () => {
    const store = StorageEngine.open('/s', { io: new FaultInjectingFileIO() });
    const seen: number[] = [];
    store.watch(() => {
      throw new Error('listener bug');
    });
    store.watch((n) => seen.push(n.generation));
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    const result = await store.put('d', 'a', 1n, [{ type: 'A' }]);
    await new Promise((resolve) => setImmediate(resolve));
    process.off('warning', onWarning);
    expect(result.firstVersion).toBe(1);
    expect(seen).toEqual([result.generation]);
    expect(warnings.some((w) => w.includes('listener bug'))).toBe(true);
    const closed: boolean[] = [];
    store.watch((n) => closed.push(n.closed === true));
    await store.close();
    expect(closed).toEqual([true]);
  });
});
