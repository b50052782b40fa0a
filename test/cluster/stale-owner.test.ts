import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { ClusterStore } from '../../src/api/cluster/cluster-store.js';
import { NatsNames } from '../../src/pipeline/cluster/nats-names.js';
import { decodeGenerationMessage } from '../../src/storage/generation-message.js';
import { ClusterNodeProcess } from '../support/cluster-node-process.js';
import { clusterSuite } from '../support/cluster-suite.js';

/**
 * A stale owner cannot append: once another node holds the lease and has written, the old owner's
 * publishes are refused by JetStream (expected last sequence), and it steps down and forwards.
 */
const suite = clusterSuite('stale');
const tempDir = () => suite.tempDir();

/** The node that published each message of a domain stream, in stream order. */
async function authors(namespace: string, domain: string): Promise<string[]> {
  const nc = await connect({ servers: suite.cluster.urls });
  try {
    const jsm = await jetstreamManager(nc);
    const stream = new NatsNames(namespace).stream(domain);
    const last = (await jsm.streams.info(stream)).state.last_seq;
    const out: string[] = [];
    for (let seq = 1; seq <= last; seq++) {
      const m = await jsm.streams.getMessage(stream, { seq });
      out.push(decodeGenerationMessage(m!.data).node);
    }
    return out;
  } finally {
    await nc.close();
  }
}

const put = (node: ClusterNodeProcess, key: string, expectedVersion: number) =>
  node.request<{ firstVersion: number; lastVersion: number }>('put', {
    domain: 'orders',
    aggregateType: 'order',
    aggregateId: '1',
    events: [{ type: 'Changed', data: key }],
    expectedVersion,
    key,
  });

describe('stale owner', () => {
  it('an owner paused with SIGSTOP past its lease cannot append after another node took over', async () => {
    const ttl = 1500;
    const spec = (nodeId: string) => ({
      dir: tempDir(),
      nodeId,
      servers: suite.cluster.urls,
      namespace: 'stop',
      leaseTtlMs: ttl,
      putTimeoutMs: 8000,
    });
    const a = await ClusterNodeProcess.start(spec('a'));
    const b = await ClusterNodeProcess.start(spec('b'));
    try {
      await put(a, 'a1', 0);
      await put(a, 'a2', 1);
      a.child.kill('SIGSTOP');
      await new Promise((r) => setTimeout(r, ttl + 1000));
      // The lease expired in the bucket: b takes it and writes.
      await put(b, 'b1', 2);
      await put(b, 'b2', 3);
      a.child.kill('SIGCONT');
      // The stale owner gets a put at once: it must not write it itself.
      const late = await put(a, 'a3', 4);
      expect(late).toMatchObject({ firstVersion: 5, lastVersion: 5 });
      const list = await authors('stop', 'orders');
      expect(list).toEqual(['a', 'a', 'b', 'b', 'b']);
      const status = await a.request<{
        domains: { owner: boolean }[];
        leasesLost: number;
        forwardedPuts: number;
      }>('status');
      expect(status.domains).toMatchObject([{ owner: false }]);
      expect(status.leasesLost).toBeGreaterThanOrEqual(1);
      expect(status.forwardedPuts).toBe(1);
      await a.request('wait', { domain: 'orders', position: 4 });
      const onA = await a.dump('orders');
      expect(onA.map((e) => [e.version, e.data])).toEqual([
        [1, 'a1'],
        [2, 'a2'],
        [3, 'b1'],
        [4, 'b2'],
        [5, 'a3'],
      ]);
      expect(await b.dump('orders')).toEqual(onA);
    } finally {
      a.child.kill('SIGCONT');
      await a.close();
      await b.close();
    }
  }, 60_000);

  it("a publish decided on a lease the bucket no longer holds is refused by the stream's expected last sequence", async () => {
    // A long TTL: the old owner's lease stays valid by its own clock; the key is deleted behind its
    // back (as after a pause on a machine whose clock misled it), so only the fence can stop it.
    const namespace = 'fence';
    const open = (nodeId: string) =>
      ClusterStore.open(tempDir(), {
        durability: 'write',
        cluster: { servers: suite.cluster.urls, nodeId, namespace, leaseTtlMs: 60_000, putTimeoutMs: 8000 },
      });
    const a = await open('a');
    const b = await open('b');
    const nc = await connect({ servers: suite.cluster.urls });
    try {
      await a.put('orders', 'order', 1, [{ type: 'Changed', data: 'a1' }], { expectedVersion: 0 });
      const kv = await new Kvm(jetstream(nc)).open(new NatsNames(namespace).leaseBucket);
      await kv.delete('orders');
      await b.put('orders', 'order', 1, [{ type: 'Changed', data: 'b1' }], { expectedVersion: 1 });
      expect(b.status().domains).toMatchObject([{ domain: 'orders', owner: true }]);
      expect(a.status().domains).toMatchObject([{ domain: 'orders', owner: true }]);
      const result = await a.put('orders', 'order', 1, [{ type: 'Changed', data: 'a2' }], {
        idempotencyKey: 'a2',
      });
      expect(result).toMatchObject({ firstVersion: 3, replayed: false });
      expect(a.status()).toMatchObject({ fencedPublishes: 1, forwardedPuts: 1 });
      expect(a.status().domains).toMatchObject([{ domain: 'orders', owner: false }]);
      expect(await authors(namespace, 'orders')).toEqual(['a', 'b', 'b']);
      await a.waitForPosition('orders', 2);
      const onA = (await a.get('orders', 'order', 1)).events;
      expect(onA.map((e) => new TextDecoder().decode(e.data))).toEqual(['a1', 'b1', 'a2']);
      expect((await b.get('orders', 'order', 1)).events).toEqual(onA);
    } finally {
      await nc.close();
      await a.close();
      await b.close();
    }
  }, 60_000);
});
