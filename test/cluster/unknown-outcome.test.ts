import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RingStore } from '../../src/api/ring-store.js';
import { ClusterNodeProcess } from '../support/cluster-node-process.js';
import { clusterSuite } from '../support/cluster-suite.js';

/**
 * A put whose outcome is unknown (its JetStream publish, or its request forwarded to the owner,
 * went unanswered for putTimeoutMs) is routed again only when it carries an idempotency key
 * (src/api/cluster/put-retry.ts), and the key makes the second attempt replay the first if that
 * was stored after all.
 *
 * A forwarded put takes the retry path for certain: its owner, a child process, is paused (SIGSTOP)
 * until the put has been routed again. For a put of the owner itself every nats-server is paused
 * while its publish is in flight, so its message waits in the socket and may be stored when they
 * resume, after the writer gave up waiting for its acknowledgement. What that node does next
 * depends on how soon the cluster answers again, and both ways are right: the catch-up after the
 * unanswered publish finds the message in the stream (the put answers with its own result), or it
 * cannot read the stream yet and the put is routed again with its key (the retry replays the
 * message if it was stored, or stores it). That test holds the put to what either way must give.
 */
const suite = clusterSuite('unknown-outcome');
const PUT_TIMEOUT_MS = 2_000;
const PAUSE_MS = 3_000;

function signalAll(signal: NodeJS.Signals): void {
  for (const server of suite.cluster.servers) server.process?.kill(signal);
}

/** The scheduler state of every server process (`T` once stopped), from /proc. */
function serverStates(): string[] {
  return suite.cluster.servers.map((server) => {
    const pid = server.process?.pid;
    if (pid === undefined) return 'gone';
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.charAt(0) ?? '?';
  });
}

/** Pauses every server and returns once the kernel has stopped them all. */
async function pauseAll(): Promise<void> {
  signalAll('SIGSTOP');
  await waitUntil(() => serverStates().every((state) => state === 'T'), 5_000);
}

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

async function waitUntil(condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** One ringstore node with its own directory and namespace; a lease that outlasts every pause. */
function openNode(nodeId: string, namespace: string): Promise<RingStore> {
  return RingStore.open({
    dir: suite.tempDir(),
    durability: 'write',
    cluster: {
      servers: suite.cluster.urls,
      nodeId,
      namespace,
      leaseTtlMs: 20_000,
      putTimeoutMs: PUT_TIMEOUT_MS,
    },
  });
}

describe('a keyed put with an unknown outcome', () => {
  it('forwarded to an owner that does not answer, is routed again and replays once the owner resumes', async () => {
    // The owner runs in a child process, paused (SIGSTOP) while a put made on this node is
    // forwarded to it: the request waits in its socket, so the forward times out for certain and
    // the keyed put is routed again (to the same owner, whose lease outlasts the pause). Only then
    // does the owner resume: it stores the first request and replays the second by its key.
    const owner = await ClusterNodeProcess.start({
      dir: suite.tempDir(),
      nodeId: 'owner',
      servers: suite.cluster.urls,
      namespace: 'forwarded',
      leaseTtlMs: 20_000,
      putTimeoutMs: PUT_TIMEOUT_MS,
    });
    const store = await openNode('d', 'forwarded');
    try {
      await owner.request('put', {
        domain: 'acct',
        aggregateType: 'account',
        aggregateId: '1',
        events: [{ type: 'Opened', data: 'open' }],
        expectedVersion: 0,
      });
      // One forwarded put first: the lease lookup and the forward answer in milliseconds, so the
      // keyed put below is forwarded well within its window (this test runs first in the file,
      // before any test pauses the servers, whose recovery could outlast that window).
      await store.put('acct', 'account', 1, [{ type: 'Noted', data: 'n' }], { expectedVersion: 1 });
      owner.child.kill('SIGSTOP');
      let settled = false;
      const put = store.put('acct', 'account', 1, [{ type: 'Deposited', data: 'x' }], {
        idempotencyKey: 'deposit-1',
      });
      void put.then(
        () => {
          settled = true;
        },
        () => {
          settled = true;
        },
      );
      await waitUntil(() => store.status().unknownOutcomeRetries > 0 || settled, 3 * PUT_TIMEOUT_MS);
      expect(settled, 'the put settled while its owner was paused').toBe(false);
      owner.child.kill('SIGCONT');
      const result = await put;
      expect(result).toMatchObject({ firstVersion: 3, lastVersion: 3, replayed: true });
      expect(store.status().unknownOutcomeRetries).toBeGreaterThan(0);
      const events = await owner.dump('acct');
      expect(events.map((e) => [e.version, e.type, e.data])).toEqual([
        [1, 'Opened', 'open'],
        [2, 'Noted', 'n'],
        [3, 'Deposited', 'x'],
      ]);
    } finally {
      owner.child.kill('SIGCONT');
      await store.close();
      await owner.close();
    }
  }, 60_000);

  it('is stored exactly once after NATS comes back, and answers with its result', async () => {
    const store = await openNode('a', 'unknown');
    try {
      await store.put('acct', 'account', 1, [{ type: 'Opened', data: 'open' }], { expectedVersion: 'none' });
      await pauseAll();
      const put = store.put(
        'acct',
        'account',
        1,
        [
          { type: 'Deposited', data: 'x' },
          { type: 'Deposited', data: 'y' },
        ],
        { idempotencyKey: 'deposit-1' },
      );
      // What the put settled with while every server was paused (nothing, if all goes well).
      let whilePaused: string | undefined;
      void put.then(
        (result) => {
          whilePaused ??= `resolved ${JSON.stringify(result)}`;
        },
        (err: unknown) => {
          whilePaused ??= `rejected ${String(err)} ${JSON.stringify(err)}`;
        },
      );
      await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
      // Nothing can be acknowledged (or given up on) while every server is paused.
      expect(whilePaused).toBeUndefined();
      signalAll('SIGCONT');
      const result = await put;
      expect(result).toMatchObject({ firstVersion: 2, lastVersion: 3 });
      // A replay answers only a put routed again (its first attempt carried a key never seen).
      const retries = store.status().unknownOutcomeRetries;
      if (result.replayed) expect(retries, 'unknown-outcome retries of a replayed put').toBeGreaterThan(0);

      const again = await store.put(
        'acct',
        'account',
        1,
        [
          { type: 'Deposited', data: 'x' },
          { type: 'Deposited', data: 'y' },
        ],
        { idempotencyKey: 'deposit-1' },
      );
      expect(again).toMatchObject({ firstVersion: 2, lastVersion: 3, replayed: true });

      const { events } = await store.get('acct', 'account', 1);
      expect(events.map((e) => [e.version, e.type, text(e.data)])).toEqual([
        [1, 'Opened', 'open'],
        [2, 'Deposited', 'x'],
        [3, 'Deposited', 'y'],
      ]);
    } finally {
      signalAll('SIGCONT');
      await store.close();
    }
  }, 60_000);

  it('is not routed again without an idempotency key: it fails with CLUSTER_UNAVAILABLE', async () => {
    const store = await openNode('b', 'unkeyed');
    try {
      await store.put('acct', 'account', 1, [{ type: 'Opened' }], { expectedVersion: 'none' });
      await pauseAll();
      const failure = await store
        .put('acct', 'account', 1, [{ type: 'Deposited' }])
        .catch((err: unknown) => err);
      signalAll('SIGCONT');
      expect(failure, `the put settled with ${JSON.stringify(failure)}`).toMatchObject({
        code: 'CLUSTER_UNAVAILABLE',
      });
      expect(String(failure)).toContain('same idempotency key');
      expect(store.status().unknownOutcomeRetries).toBe(0);
      // Its message may still be stored once the servers resume (this node then applies it from the
      // stream as a follower); without a retry it is stored at most once.
      const stream = store.status().domains.find((d) => d.domain === 'acct');
      expect(stream).toBeDefined();
      await waitUntil(() => store.status().domains.find((d) => d.domain === 'acct')?.lag === 0);
      const { events } = await store.get('acct', 'account', 1);
      expect(events.filter((e) => e.type === 'Deposited').length).toBeLessThanOrEqual(1);
      expect(events.map((e) => e.version)).toEqual(events.map((_, i) => i + 1));
    } finally {
      signalAll('SIGCONT');
      await store.close();
    }
  }, 60_000);
});
