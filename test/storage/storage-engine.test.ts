import { mkdtempSync, rmSync } from 'node:fs';
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
