import { jetstream } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ClusterEngine, ClusterNode } from '../../src/api/cluster/cluster-node.js';
import type { ClusterControl, ClusterWriterMessage } from '../../src/pipeline/cluster/writer-node.js';
import type { PutResult } from '../../src/types.js';
import type { WriterControlMessage } from '../../src/workers/writer-protocol.js';
import { clusterSuite } from '../support/cluster-suite.js';

/**
 * The main thread's side of cluster mode (ClusterNode) against a fake writer thread: the test sees
 * every numbered 'own'/'disown' the node sends and posts the writer's answers itself, in an order
 * of its choosing. A late answer to an earlier 'own' (N) arriving once a later 'own' (N+1) of the
 * same domain was sent must change nothing: the lease, whether the node writes the domain, and
 * which puts enter the ring follow N+1's answer only. The lease book is the real one, on a real
 * nats-server; the test loses a lease by deleting its key, and the node's next renewal notices.
 *
 * Every wait is for an event (a control message sent, a put answered), never a sleep.
 */
const suite = clusterSuite('stale-answers');
const DOMAIN = 'orders';

/** The engine ClusterNode drives: records controls and puts; answers only when the test says. */
class FakeWriter implements ClusterEngine {
  readonly failed = false;
  readonly controls: WriterControlMessage[] = [];
  /** The data of each put that entered the ring, in order. */
  readonly puts: string[] = [];
  #listener: ((message: ClusterWriterMessage) => void) | undefined;
  /** Index into `controls` of the next control next() hands out. */
  #cursor = 0;
  readonly #wake = new Set<() => void>();

  read(): never {
    throw new Error('not used');
  }
  watch(): () => void {
    return () => undefined;
  }
  onCluster(listener: (message: ClusterWriterMessage) => void): void {
    this.#listener = listener;
  }
  control(message: WriterControlMessage): void {
    this.controls.push(message);
    for (const wake of [...this.#wake]) wake();
  }
  put(
    _domain: string,
    _type: string,
    _id: unknown,
    events: readonly { data?: unknown }[],
  ): Promise<PutResult> {
    const data = events[0]?.data;
    this.puts.push(data instanceof Uint8Array ? new TextDecoder().decode(data) : String(data));
    const n = this.puts.length;
    return Promise.resolve({
      firstVersion: n,
      lastVersion: n,
      firstPosition: n,
      generation: n,
      timestamp: 0,
      durability: 'fsync',
      replayed: false,
    });
  }

  /** The writer thread posts an answer to the main thread. */
  answer(message: ClusterWriterMessage): void {
    this.#listener!(message);
  }

  /** The next domain control sent after the last one handed out (waits for it if need be). */
  async next(): Promise<ClusterControl> {
    for (;;) {
      while (this.#cursor < this.controls.length) {
        const message = this.controls[this.#cursor++]!;
        if (message.type !== 'follow') return message;
      }
      await this.#sent();
    }
  }

  /** The next domain control sent from now on, without handing it out (next() still returns it). */
  async another(): Promise<ClusterControl> {
    for (let seen = this.controls.length; ; seen++) {
      while (seen >= this.controls.length) await this.#sent();
      const message = this.controls[seen]!;
      if (message.type !== 'follow') return message;
    }
  }

  #sent(): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = () => {
        this.#wake.delete(wake);
        resolve();
      };
      this.#wake.add(wake);
    });
  }

  /** Like next(), and expects it to be of `type`. */
  async expect(type: ClusterControl['type']): Promise<ClusterControl> {
    const message = await this.next();
    expect(message, `expected '${type}', the node sent ${JSON.stringify(message)}`).toMatchObject({
      type,
      domain: DOMAIN,
    });
    return message;
  }
}

/** The test's own connection: it reads and deletes lease keys as another party would. */
let nc: NatsConnection;
let namespaces = 0;

beforeAll(async () => {
  nc = await connect({ servers: suite.cluster.urls });
});
afterAll(async () => {
  await nc.close();
});

let opened: ClusterNode[] = [];
afterEach(async () => {
  for (const node of opened) await node.close();
  opened = [];
});

/** A node with a fake writer, in a namespace of its own; `leases` is the lease bucket as seen from outside. */
async function start(): Promise<{ node: ClusterNode; writer: FakeWriter; leases: KV }> {
  const namespace = `stale${++namespaces}`;
  const writer = new FakeWriter();
  const node = await ClusterNode.start(writer, {
    servers: suite.cluster.urls,
    nodeId: 'n1',
    replicas: 1,
    namespace,
    // Renewals every 500 ms: a deleted key is noticed soon; a loaded machine keeps its lease.
    leaseTtlMs: 2000,
    putTimeoutMs: 20_000,
  });
  opened.push(node);
  const leases = await new Kvm(jetstream(nc)).open(`${namespace}_leases`);
  return { node, writer, leases };
}

const put = (node: ClusterNode, data: string) => node.put(DOMAIN, 'order', '1', [{ type: 'Changed', data }]);

/** Which comes first: the put answered, or the node sending the writer another control. */
async function firstOf(answer: Promise<PutResult>, writer: FakeWriter): Promise<string> {
  return Promise.race([
    answer.then(
      () => 'put answered',
      (err: unknown) => `put failed: ${String(err)}`,
    ),
    writer.another().then((m) => `sent '${m.type}'`),
  ]);
}

/** The lease key's holder as the bucket says (undefined: no lease). */
async function holder(leases: KV): Promise<string | undefined> {
  const entry = await leases.get(DOMAIN);
  if (entry?.operation !== 'PUT') return undefined;
  return (entry.json() as { node: string }).node;
}

const owner = (node: ClusterNode) => node.status().domains.find((d) => d.domain === DOMAIN)?.owner ?? false;

/**
 * The node owns the domain through an answered 'own' (N), then loses the lease (the writer is told
 * 'disown') and takes it again for the next put: a new 'own' (N+1) is waiting for its answer.
 */
async function reownedAfterLoss(node: ClusterNode, writer: FakeWriter, leases: KV) {
  const first = put(node, 'p1');
  const own = await writer.expect('own');
  writer.answer({ type: 'owning', domain: DOMAIN, request: own.request, last: 0 });
  await first;
  expect(owner(node)).toBe(true);
  // Someone else's doing: the key goes; the node's next renewal finds it gone.
  await leases.delete(DOMAIN);
  await writer.expect('disown');
  expect(owner(node)).toBe(false);
  const second = put(node, 'p2');
  second.catch(() => undefined);
  const reown = await writer.expect('own');
  return { own, reown, second };
}

/**
 * The node sends 'own' (N) and, before the writer answers it, the lease is lost and taken again for
 * the same put: 'own' (N+1) is waiting for its answer, N's is still to come.
 */
async function ownAgainWhileCatchingUp(node: ClusterNode, writer: FakeWriter, leases: KV) {
  const first = put(node, 'p1');
  first.catch(() => undefined);
  const own = await writer.expect('own');
  await leases.delete(DOMAIN);
  // The lost lease ends the wait ('disown'), the failed attempt says 'disown' too; the put is
  // routed again and takes the lease anew.
  await writer.expect('disown');
  await writer.expect('disown');
  const reown = await writer.expect('own');
  expect(owner(node)).toBe(false);
  return { own, reown, first };
}

describe('stale answers of the writer thread', () => {
  it("a late 'stepped-down' of the replaced publisher, before the new 'owning', keeps the new lease", async () => {
    const { node, writer, leases } = await start();
    const { own, reown, second } = await reownedAfterLoss(node, writer, leases);
    // The publisher of N was fenced before the 'disown' reached the writer thread.
    writer.answer({ type: 'stepped-down', domain: DOMAIN, request: own.request, reason: 'fenced' });
    writer.answer({ type: 'owning', domain: DOMAIN, request: reown.request, last: 1 });
    expect(await firstOf(second, writer)).toBe('put answered');
    expect(owner(node)).toBe(true);
    expect(await holder(leases)).toBe('n1');
    // The node writes the domain: the next put goes straight into the ring.
    expect(await firstOf(put(node, 'p3'), writer)).toBe('put answered');
    expect(writer.puts).toEqual(['p1', 'p2', 'p3']);
    expect(node.status().leasesTaken).toBe(2);
  });

  it("a late 'stepped-down' of the replaced publisher, after the new 'owning', keeps the new lease", async () => {
    const { node, writer, leases } = await start();
    const { own, reown, second } = await reownedAfterLoss(node, writer, leases);
    writer.answer({ type: 'owning', domain: DOMAIN, request: reown.request, last: 1 });
    expect(await firstOf(second, writer)).toBe('put answered');
    writer.answer({ type: 'stepped-down', domain: DOMAIN, request: own.request, reason: 'fenced' });
    expect(owner(node)).toBe(true);
    expect(await firstOf(put(node, 'p3'), writer)).toBe('put answered');
    expect(writer.puts).toEqual(['p1', 'p2', 'p3']);
    expect(await holder(leases)).toBe('n1');
    // The lease was neither released nor taken again.
    expect(node.status().leasesTaken).toBe(2);
  });

  it("a late 'owning' of N does not settle the wait of N+1, which the writer then fails", async () => {
    const { node, writer, leases } = await start();
    const { own, reown, first } = await ownAgainWhileCatchingUp(node, writer, leases);
    writer.answer({ type: 'owning', domain: DOMAIN, request: own.request, last: 0 });
    expect(owner(node)).toBe(false);
    writer.answer({
      type: 'own-failed',
      domain: DOMAIN,
      request: reown.request,
      error: { code: 'NOT_OWNER', message: 'could not catch up' },
    });
    // N+1 failed: the node gives the lease up and tells the writer; the put is not in the ring.
    expect(await firstOf(first, writer)).toBe("sent 'disown'");
    await writer.expect('disown');
    expect(writer.puts).toEqual([]);
    expect(owner(node)).toBe(false);
    // The put is routed again: a new 'own' (sent once the lease was released and taken again).
    const last = await writer.expect('own');
    writer.answer({ type: 'owning', domain: DOMAIN, request: last.request, last: 0 });
    expect(await firstOf(first, writer)).toBe('put answered');
    expect(writer.puts).toEqual(['p1']);
    expect(owner(node)).toBe(true);
    expect(await holder(leases)).toBe('n1');
  });

  it("a late 'own-failed' of N does not fail the wait of N+1, which the writer then answers 'owning'", async () => {
    const { node, writer, leases } = await start();
    const { own, reown, first } = await ownAgainWhileCatchingUp(node, writer, leases);
    writer.answer({
      type: 'own-failed',
      domain: DOMAIN,
      request: own.request,
      error: { code: 'NOT_OWNER', message: 'superseded' },
    });
    writer.answer({ type: 'owning', domain: DOMAIN, request: reown.request, last: 0 });
    expect(await firstOf(first, writer)).toBe('put answered');
    expect(writer.puts).toEqual(['p1']);
    expect(owner(node)).toBe(true);
    expect(await holder(leases)).toBe('n1');
    expect(await firstOf(put(node, 'p2'), writer)).toBe('put answered');
    expect(writer.puts).toEqual(['p1', 'p2']);
  });

  // The main thread now forgets a domain's last 'own' once its step-down is acted on (memory only:
  // no test sees the entry). What can be seen: numbers from one sequence, and a repeated step-down
  // after the lease was taken again still changing nothing.
  it("numbers requests in one sequence across domains; a step-down repeated after a new 'own' changes nothing", async () => {
    const { node, writer, leases } = await start();
    const first = put(node, 'p1');
    const own = await writer.expect('own');
    writer.answer({ type: 'owning', domain: DOMAIN, request: own.request, last: 0 });
    await first;
    // Another domain's 'own' takes the next number: no number is used twice, whatever the domain.
    const other = node.put('billing', 'invoice', '1', [{ type: 'Opened', data: 'b1' }]);
    const ownOther = await writer.next();
    expect(ownOther).toMatchObject({ type: 'own', domain: 'billing' });
    expect(ownOther.request).toBeGreaterThan(own.request);
    writer.answer({ type: 'owning', domain: 'billing', request: ownOther.request, last: 0 });
    await other;

    // The orders publisher is fenced: the node stops writing the domain and gives the lease up.
    writer.answer({ type: 'stepped-down', domain: DOMAIN, request: own.request, reason: 'fenced' });
    expect(owner(node)).toBe(false);
    const second = put(node, 'p2');
    const reown = await writer.expect('own');
    expect(reown.request).toBeGreaterThan(ownOther.request);
    writer.answer({ type: 'owning', domain: DOMAIN, request: reown.request, last: 1 });
    expect(await firstOf(second, writer)).toBe('put answered');
    // The same step-down once more (a duplicate): it answers an 'own' long replaced and changes nothing.
    writer.answer({ type: 'stepped-down', domain: DOMAIN, request: own.request, reason: 'fenced' });
    expect(owner(node)).toBe(true);
    expect(await firstOf(put(node, 'p3'), writer)).toBe('put answered');
    expect(writer.puts).toEqual(['p1', 'b1', 'p2', 'p3']);
    expect(await holder(leases)).toBe('n1');
  });
});
