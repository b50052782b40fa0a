import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsNames } from '../../src/pipeline/cluster/nats-names.js';
import { ClusterNodeProcess, type NodeEvent, type NodeSpec } from '../support/cluster-node-process.js';
import { type NatsCluster, startNatsCluster } from '../support/nats-cluster.js';
import { mulberry32 } from '../support/prng.js';

/**
 * The failover test of docs/CLUSTER.md: three nats-servers (streams R3), two ringstore nodes in
 * child processes, clients appending with expected versions and idempotency keys. The nats-server
 * leading the busiest domain's stream is killed with SIGKILL, then the ringstore node that owns
 * the busiest domain; clients retry on the survivor with the same key and expected version.
 * Afterwards every acknowledged batch must be on the surviving node (and on the killed node once
 * restarted from its own directory) exactly once, versions per instance gapless, nothing stored
 * that no client put.
 */
const LEASE_TTL_MS = 2000;
const PUT_TIMEOUT_MS = 8000;

interface Acked {
  domain: string;
  aggregateId: string;
  key: string;
  firstVersion: number;
  lastVersion: number;
  data: string[];
  replayed: boolean;
}

interface Client {
  domain: string;
  aggregateId: string;
  version: number;
  seq: number;
}

let cluster: NatsCluster;
const dirs: string[] = [];
const nodes: ClusterNodeProcess[] = [];

beforeAll(async () => {
  cluster = await startNatsCluster(3);
});

afterAll(async () => {
  for (const node of nodes) await node.kill().catch(() => undefined);
  await cluster?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function spec(nodeId: string, dir: string): NodeSpec {
  return {
    dir,
    nodeId,
    servers: cluster.urls,
    namespace: 'failover',
    leaseTtlMs: LEASE_TTL_MS,
    putTimeoutMs: PUT_TIMEOUT_MS,
  };
}

async function startNode(nodeId: string, dir: string): Promise<ClusterNodeProcess> {
  const node = await ClusterNodeProcess.start(spec(nodeId, dir));
  nodes.push(node);
  return node;
}

/** The server name of the stream leader of a domain. */
async function streamLeader(domain: string): Promise<string> {
  const nc = await connect({ servers: cluster.urls });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(new NatsNames('failover').stream(domain));
    return info.cluster?.leader ?? cluster.servers[0]!.name;
  } finally {
    await nc.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('failover', () => {
  it('loses and duplicates nothing acknowledged when a nats-server and then the busiest owner are killed', async () => {
    const seed = Number(process.env.RINGSTORE_SEED ?? Date.now() % 1_000_000);
    const random = mulberry32(seed);
    const dirA = mkdtempSync(join(tmpdir(), 'ringstore-fo-a-'));
    const dirB = mkdtempSync(join(tmpdir(), 'ringstore-fo-b-'));
    dirs.push(dirA, dirB);
    const a = await startNode('a', dirA);
    const b = await startNode('b', dirB);
    const domains = ['busy', 'quiet1', 'quiet2'];
    // a takes every lease first: it owns the busiest domain (and the others).
    for (const domain of domains) {
      await a.request('put', {
        domain,
        aggregateType: 'acct',
        aggregateId: '1000',
        events: [{ type: 'Opened', data: `${domain}-open` }],
        expectedVersion: 'none',
        key: `${domain}-open`,
      });
    }
    const clients: Client[] = [];
    for (let i = 0; i < 5; i++)
      clients.push({ domain: 'busy', aggregateId: String(i + 1), version: 0, seq: 0 });
    clients.push({ domain: 'quiet1', aggregateId: '1', version: 0, seq: 0 });
    clients.push({ domain: 'quiet2', aggregateId: '1', version: 0, seq: 0 });

    const acked: Acked[] = [];
    const failures: string[] = [];
    let stopping = false;
    let retries = 0;

    const runClient = async (client: Client, index: number) => {
      while (!stopping) {
        const key = `c${index}-${client.seq}`;
        const count = 1 + Math.floor(random() * 3);
        const data = Array.from({ length: count }, (_, e) => `${key}:${e}`);
        const events = data.map((d) => ({ type: 'Deposited', data: d }));
        const expectedVersion = client.version;
        let node = random() < 0.5 ? a : b;
        const deadline = Date.now() + 30_000;
        for (;;) {
          if (!node.alive) node = node === a ? b : a;
          try {
            const result = await node.request<{
              firstVersion: number;
              lastVersion: number;
              replayed: boolean;
            }>('put', {
              domain: client.domain,
              aggregateType: 'acct',
              aggregateId: client.aggregateId,
              events,
              expectedVersion,
              key,
            });
            acked.push({
              domain: client.domain,
              aggregateId: client.aggregateId,
              key,
              firstVersion: result.firstVersion,
              lastVersion: result.lastVersion,
              data,
              replayed: result.replayed,
            });
            if (
              result.firstVersion !== expectedVersion + 1 ||
              result.lastVersion !== expectedVersion + count
            ) {
              failures.push(
                `${key}: versions ${result.firstVersion}-${result.lastVersion} after ${expectedVersion}`,
              );
            }
            client.version = result.lastVersion;
            client.seq++;
            break;
          } catch (err) {
            const code = (err as { code?: string }).code ?? '';
            if (code === 'VERSION_CONFLICT' || code === 'INVALID_BATCH' || Date.now() > deadline) {
              failures.push(`${key}: ${code} ${(err as Error).message}`);
              stopping = true;
              return;
            }
            retries++;
            // Retry the same put (same key, same expected version) on the other node.
            node = node === a ? b : a;
            await sleep(50);
          }
        }
      }
    };

    const running = clients.map((c, i) => runClient(c, i));
    await sleep(1500);
    // The nats-server that leads the busiest domain's stream: its Raft group must elect anew.
    const leader = await streamLeader('busy');
    await cluster.kill(cluster.servers.findIndex((s) => s.name === leader));
    await sleep(1500);
    const before = acked.length;
    await a.kill('SIGKILL');
    await sleep(LEASE_TTL_MS + 3000);
    stopping = true;
    await Promise.all(running);
    const afterKill = acked.length - before;
    expect(failures, `seed ${seed}`).toEqual([]);
    expect(afterKill, `seed ${seed}: no put was acknowledged after the owner was killed`).toBeGreaterThan(0);

    // The killed node restarts from its own directory and catches up.
    const a2 = await startNode('a', dirA);
    const survivors = [b, a2];
    let checked = 0;
    let lost = 0;
    let duplicated = 0;
    for (const node of survivors) {
      for (const domain of domains) {
        const expected = acked.filter((x) => x.domain === domain);
        const own = await b.dump(domain);
        if (own.length > 0) await node.request('wait', { domain, position: own.length - 1 });
        const events = await node.dump(domain);
        const byData = new Map<string, NodeEvent[]>();
        for (const e of events) byData.set(e.data, [...(byData.get(e.data) ?? []), e]);
        for (const x of expected) {
          for (let i = 0; i < x.data.length; i++) {
            const found = byData.get(x.data[i]!) ?? [];
            checked++;
            if (found.length === 0) lost++;
            else if (found.length > 1) duplicated++;
            else if (found[0]!.version !== x.firstVersion + i || found[0]!.aggregateId !== x.aggregateId) {
              failures.push(`${node.nodeId} ${x.key}: event ${i} at version ${found[0]!.version}`);
            }
          }
        }
        // Gapless versions per instance, positions in order, and nothing no client put.
        const versions = new Map<string, number>();
        const ackedData = new Set(expected.flatMap((x) => x.data).concat(`${domain}-open`));
        for (let p = 0; p < events.length; p++) {
          const e = events[p]!;
          if (e.position !== p) failures.push(`${node.nodeId} ${domain}: position ${e.position} at ${p}`);
          const v = (versions.get(e.aggregateId) ?? 0) + 1;
          if (e.version !== v)
            failures.push(`${node.nodeId} ${domain}/${e.aggregateId}: version ${e.version}, expected ${v}`);
          versions.set(e.aggregateId, e.version);
          if (!ackedData.has(e.data))
            failures.push(`${node.nodeId} ${domain}: ${e.data} stored but never acknowledged`);
        }
        if (node !== b) expect(events, `${domain} differs between b and a`).toEqual(own);
      }
    }
    const replayed = acked.filter((x) => x.replayed).length;
    console.log(
      `failover (seed ${seed}): acknowledged ${acked.length} puts, checked ${checked} events on ${survivors.length} nodes, lost ${lost}, duplicated ${duplicated}; retries ${retries}, replayed ${replayed}`,
    );
    expect(failures, `seed ${seed}`).toEqual([]);
    expect(lost, `seed ${seed}`).toBe(0);
    expect(duplicated, `seed ${seed}`).toBe(0);
    await b.close();
    await a2.close();
  }, 240_000);
});
