import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { RingStoreError } from '../../errors.js';
import { describe } from '../../pipeline/cluster/nats-errors.js';
import { NatsNames } from '../../pipeline/cluster/nats-names.js';
import { natsConnectOptions } from '../../pipeline/cluster/nats-servers.js';
import type { ClusterNodeStatus } from './cluster-node.js';
import type { LeaseRecord } from './lease-book.js';

/** A cluster as NATS holds it: domain streams, leases and node heartbeats (`ringstore cluster status`). */
export interface ClusterStatus {
  namespace: string;
  streams: {
    domain: string;
    lastSequence: number;
    messages: number;
    bytes: number;
    replicas: number;
    leader: string | undefined;
    /** Replicas (other than the leader) that are not current. */
    lagging: string[];
  }[];
  leases: { domain: string; node: string; since: number; revision: number }[];
  /** Each node's last heartbeat, with its lag per domain against the stream's last sequence. */
  nodes: (ClusterNodeStatus & { domains: (ClusterNodeStatus['domains'][number] & { behind: number })[] })[];
}

const utf8 = new TextDecoder();

async function keysOf(kv: Awaited<ReturnType<Kvm['open']>>): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of await kv.keys()) keys.push(key);
  return keys.sort();
}

export async function readClusterStatus(
  servers: readonly string[],
  namespace?: string,
): Promise<ClusterStatus> {
  const names = new NatsNames(namespace);
  let nc: Awaited<ReturnType<typeof connect>>;
  // Checked before connecting: a server list that is not valid is INVALID_OPTION, not unreachable.
  const connection = natsConnectOptions(servers);
  try {
    nc = await connect({ ...connection, timeout: 5000, reconnect: false });
  } catch (err) {
    throw new RingStoreError('CLUSTER_UNAVAILABLE', `cannot connect to NATS: ${describe(err)}`);
  }
  try {
    const jsm = await jetstreamManager(nc, { timeout: 5000 });
    const streams: ClusterStatus['streams'] = [];
    for await (const info of jsm.streams.list()) {
      const domain = names.domainOfStream(info.config.name);
      if (domain === undefined) continue;
      streams.push({
        domain,
        lastSequence: info.state.last_seq,
        messages: info.state.messages,
        bytes: info.state.bytes,
        replicas: info.config.num_replicas,
        leader: info.cluster?.leader,
        lagging: (info.cluster?.replicas ?? []).filter((r) => !r.current).map((r) => r.name),
      });
    }
    streams.sort((a, b) => (a.domain < b.domain ? -1 : 1));
    const kvm = new Kvm(jetstream(nc));
    const leases: ClusterStatus['leases'] = [];
    const nodes: ClusterStatus['nodes'] = [];
    const last = new Map(streams.map((s) => [s.domain, s.lastSequence]));
    try {
      const kv = await kvm.open(names.leaseBucket);
      for (const key of await keysOf(kv)) {
        const entry = await kv.get(key);
        if (entry?.operation !== 'PUT') continue;
        const record = entry.json<LeaseRecord>();
        leases.push({ domain: key, node: record.node, since: record.since, revision: entry.revision });
      }
    } catch {
      // No lease bucket yet: no node has written.
    }
    try {
      const kv = await kvm.open(names.nodeBucket);
      for (const key of await keysOf(kv)) {
        const entry = await kv.get(key);
        if (entry?.operation !== 'PUT') continue;
        const node = JSON.parse(utf8.decode(entry.value)) as ClusterNodeStatus;
        nodes.push({
          ...node,
          domains: node.domains.map((d) => ({
            ...d,
            behind: Math.max(0, (last.get(d.domain) ?? d.applied) - d.applied),
          })),
        });
      }
    } catch {
      // No node bucket yet.
    }
    return { namespace: names.namespace, streams, leases, nodes };
  } catch (err) {
    if (err instanceof RingStoreError) throw err;
    throw new RingStoreError('CLUSTER_UNAVAILABLE', `cannot read the cluster's state: ${describe(err)}`);
  } finally {
    await nc.close();
  }
}
