import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterStore } from '../../src/api/cluster/cluster-store.js';
import { RingStore } from '../../src/api/ring-store.js';
import { eventStoreContract } from '../contract/event-store-contract.js';
import { type NatsCluster, startNatsCluster } from '../support/nats-cluster.js';

let cluster: NatsCluster;
let dirs: string[] = [];
let namespaces = 0;

beforeAll(async () => {
  cluster = await startNatsCluster(3);
});

afterAll(async () => {
  await cluster?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs = [];
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ringstore-cluster-'));
  dirs.push(dir);
  return dir;
}

function open(dir: string, nodeId: string, namespace: string, replicas = 3): Promise<ClusterStore> {
  return ClusterStore.open(dir, {
    durability: 'write',
    cluster: { servers: cluster.urls, nodeId, namespace, leaseTtlMs: 2000, putTimeoutMs: 10_000, replicas },
  });
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe('ClusterStore on three nats-servers', () => {
  it('writes through the owner and every node applies the same generations', async () => {
    const ns = `t${namespaces++}`;
    const a = await open(tempDir(), 'a', ns);
    const b = await open(tempDir(), 'b', ns);
    try {
      const first = await a.put('orders', 'order', 1, [{ type: 'Placed', data: 'one' }], {
        expectedVersion: 'none',
      });
      expect(first).toMatchObject({ firstVersion: 1, lastVersion: 1, firstPosition: 0, generation: 1 });
      // b is not the owner: its put is forwarded to a.
      const second = await b.put('orders', 'order', 1, [{ type: 'Paid', data: 'two' }, { type: 'Shipped' }], {
        expectedVersion: 1,
        idempotencyKey: 'k2',
      });
      expect(second).toMatchObject({ firstVersion: 2, lastVersion: 3, firstPosition: 1, generation: 2 });
      expect(a.status().forwardedPuts).toBe(0);
      expect(b.status().forwardedPuts).toBe(1);
      const replay = await b.put('orders', 'order', 1, [{ type: 'Paid', data: 'two' }], {
        idempotencyKey: 'k2',
      });
      expect(replay).toMatchObject({ ...second, replayed: true, durability: replay.durability });
      await expect(
        b.put('orders', 'order', 1, [{ type: 'Paid' }], { expectedVersion: 1 }),
      ).rejects.toMatchObject({ code: 'VERSION_CONFLICT' });
      await b.waitForPosition('orders', second.firstPosition + 1);
      const onA = await a.get('orders', 'order', 1);
      const onB = await b.get('orders', 'order', 1);
      expect(onB.events).toEqual(onA.events);
      expect(onB.events.map((e) => [e.type, e.version, e.position, e.generation, text(e.data)])).toEqual([
        ['Placed', 1, 0, 1, 'one'],
        ['Paid', 2, 1, 2, 'two'],
        ['Shipped', 3, 2, 2, ''],
      ]);
      expect(a.status().domains).toEqual([{ domain: 'orders', applied: 2, lag: 0, owner: true }]);
      expect(b.status().domains).toMatchObject([{ domain: 'orders', applied: 2, owner: false }]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("refuses a batch larger than the server's max_payload with MESSAGE_TOO_LARGE, storing nothing", async () => {
    const a = await open(tempDir(), 'a', `t${namespaces++}`, 1);
    try {
      // 20 events of 60,000 bytes: within the store's batch limit (4 MiB), past NATS's 1 MB default.
      const big = Array.from({ length: 20 }, () => ({ type: 'Big', data: new Uint8Array(60_000) }));
      await expect(a.put('files', 'blob', 1, big)).rejects.toMatchObject({
        code: 'MESSAGE_TOO_LARGE',
        status: 413,
      });
      const small = await a.put('files', 'blob', 1, big.slice(0, 10));
      expect(small).toMatchObject({ firstVersion: 1, lastVersion: 10, firstPosition: 0 });
    } finally {
      await a.close();
    }
  });

  it("RingStore.open({ cluster }): puts go through the ring and the writer thread's JetStream commits; a follower's subscription sees them live", async () => {
    const ns = `t${namespaces++}`;
    const clusterOf = (nodeId: string) => ({
      servers: cluster.urls,
      nodeId,
      namespace: ns,
      leaseTtlMs: 2000,
      putTimeoutMs: 10_000,
    });
    const a = await RingStore.open({ dir: tempDir(), durability: 'fsync', cluster: clusterOf('a') });
    const b = await RingStore.open({ dir: tempDir(), durability: 'fsync', cluster: clusterOf('b') });
    try {
      expect(a.node).toBe('a');
      expect(() => a.producer()).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
      const live = b.domain('ledger').subscribe({ fromPosition: 0 });
      const seen: string[] = [];
      const following = (async () => {
        for await (const event of live) {
          seen.push(`${event.position}:${text(event.data)}`);
          if (seen.length === 6) break;
        }
      })();
      const puts = await Promise.all(
        [1, 2, 3].map((id) =>
          a.put('ledger', 'acct', id, [{ type: 'E', data: `a${id}` }], { expectedVersion: 'none' }),
        ),
      );
      // The writer loop committed them (ring records) and each is one generation of the stream.
      expect(a.stats().commits).toBeGreaterThan(0);
      expect(puts.every((p) => p.durability === 'fsync' && p.generation >= 1)).toBe(true);
      // Through b: forwarded to a, put into a's ring; b applies a's messages and sees them live.
      for (const id of [4, 5, 6]) await b.put('ledger', 'acct', id, [{ type: 'E', data: `b${id}` }]);
      await following;
      expect(seen.map((s) => s.split(':')[0])).toEqual(['0', '1', '2', '3', '4', '5']);
      expect(seen.map((s) => s.split(':')[1]).sort()).toEqual(['a1', 'a2', 'a3', 'b4', 'b5', 'b6']);
      expect(b.status()).toMatchObject({ forwardedPuts: 3, domains: [{ domain: 'ledger', owner: false }] });
      expect(a.status().publishedMessages).toBeGreaterThanOrEqual(1);
      expect((await a.read('ledger')).events).toEqual((await b.read('ledger')).events);
    } finally {
      await b.close();
      await a.close();
    }
  });

  it('a restarted node catches up from its own store', async () => {
    const ns = `t${namespaces++}`;
    const dirB = tempDir();
    const a = await open(tempDir(), 'a', ns);
    let b = await open(dirB, 'b', ns);
    try {
      for (let i = 1; i <= 5; i++)
        await a.put('d1', 'acct', 7, [{ type: 'E', data: `e${i}` }], { expectedVersion: i - 1 });
      await b.waitForPosition('d1', 4);
      await b.close();
      for (let i = 6; i <= 9; i++)
        await a.put('d1', 'acct', 7, [{ type: 'E', data: `e${i}` }], { expectedVersion: i - 1 });
      b = await open(dirB, 'b', ns);
      await b.waitForPosition('d1', 8);
      const events = (await b.get('d1', 'acct', 7)).events;
      expect(events.map((e) => text(e.data))).toEqual(['e1', 'e2', 'e3', 'e4', 'e5', 'e6', 'e7', 'e8', 'e9']);
      expect(events.map((e) => e.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect((await a.get('d1', 'acct', 7)).events).toEqual(events);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

eventStoreContract('ClusterStore (one node, three nats-servers)', {
  open: async () => open(tempDir(), 'solo', `c${namespaces++}`, 1),
});
