import { resolve } from 'node:path';
import { type ClusterStatus, readClusterStatus } from '../api/cluster/cluster-status.js';
import { RingStoreError } from '../errors.js';
import { natsServers } from '../pipeline/cluster/nats-servers.js';
import { parseOptions } from './args.js';

export const CLUSTER_USAGE = `usage: ringstore cluster status --nats <url>[,<url>…] [--namespace NAME] [--json]
       ringstore cluster import --dir DIR --nats <url>[,<url>…] [--namespace NAME] [--replicas N]

status   shows a ringstore cluster as NATS holds it (docs/CLUSTER.md): each domain stream (last
         sequence, replicas, leader), each domain lease (owner), and each live node with what it
         applied per domain and how far behind the stream it is.
import   moves a single-node store (DIR, not in use) into the cluster: each domain's batches into
         its empty domain stream, keeping positions, versions, idempotency keys and timestamps.

options:
  --nats <urls>        nats-server URLs, comma separated (or RINGSTORE_NATS)
  --namespace <name>   the cluster's namespace (default ringstore, or RINGSTORE_NAMESPACE)
  --json               status: print it as JSON
  --dir <dir>          import: the single-node store directory
  --replicas <n>       import: replicas of the domain streams created (default 3 with three servers)
  -h, --help
`;

export async function runCluster(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'import') return runImport(rest, env);
  if (sub !== 'status') {
    throw new RingStoreError(
      'INVALID_OPTION',
      `unknown cluster command ${JSON.stringify(sub ?? '')} (see ringstore cluster --help)`,
    );
  }
  const values = parseOptions('cluster', rest, {
    nats: { type: 'string' },
    namespace: { type: 'string' },
    json: { type: 'boolean' },
  });
  const servers = serversOf('status', values.nats, env);
  const status = await readClusterStatus(
    servers,
    (values.namespace as string | undefined) ?? env.RINGSTORE_NAMESPACE,
  );
  process.stdout.write(values.json === true ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
  return 0;
}

async function runImport(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const values = parseOptions('cluster', args, {
    nats: { type: 'string' },
    namespace: { type: 'string' },
    dir: { type: 'string' },
    replicas: { type: 'string' },
  });
  const servers = serversOf('import', values.nats, env);
  const dir = values.dir as string | undefined;
  if (dir === undefined)
    throw new RingStoreError('INVALID_OPTION', 'cluster import needs --dir DIR (a single-node store)');
  const rawReplicas = values.replicas as string | undefined;
  if (rawReplicas !== undefined && !/^[1-5]$/.test(rawReplicas)) {
    throw new RingStoreError('INVALID_OPTION', '--replicas must be an integer from 1 to 5');
  }
  const { importStore } = await import('../api/cluster/import-store.js');
  const namespace = (values.namespace as string | undefined) ?? env.RINGSTORE_NAMESPACE;
  const imported = await importStore(resolve(dir), {
    servers,
    ...(namespace !== undefined ? { namespace } : {}),
    ...(rawReplicas !== undefined ? { replicas: Number(rawReplicas) } : {}),
  });
  for (const d of imported) {
    process.stdout.write(`${d.domain}: ${d.batches} batches, ${d.events} events in ${d.messages} messages\n`);
  }
  return 0;
}

/** The nats-server list of a cluster command: --nats, else RINGSTORE_NATS, checked as URLs. */
function serversOf(command: string, flag: unknown, env: NodeJS.ProcessEnv): string[] {
  const nats = (flag as string | undefined) ?? env.RINGSTORE_NATS;
  if (nats === undefined) {
    throw new RingStoreError('INVALID_OPTION', `cluster ${command} needs --nats <url>[,<url>…]`);
  }
  return natsServers(nats, flag !== undefined ? '--nats' : 'RINGSTORE_NATS (--nats)');
}

export function formatStatus(status: ClusterStatus): string {
  const lines = [`namespace ${status.namespace}`, '', 'domains:'];
  if (status.streams.length === 0) lines.push('  (none)');
  for (const s of status.streams) {
    const lease = status.leases.find((l) => l.domain === s.domain);
    lines.push(
      `  ${s.domain}  last ${s.lastSequence}  R${s.replicas}  leader ${s.leader ?? '-'}${s.lagging.length > 0 ? ` (not current: ${s.lagging.join(', ')})` : ''}  owner ${lease?.node ?? '-'}`,
    );
  }
  lines.push('', 'nodes:');
  if (status.nodes.length === 0) lines.push('  (none)');
  for (const n of status.nodes) {
    lines.push(
      `  ${n.node}  seen ${new Date(n.at).toISOString()}  leases taken ${n.leasesTaken} lost ${n.leasesLost}  fenced ${n.fencedPublishes}  forwarded ${n.forwardedPuts}`,
    );
    for (const d of n.domains) {
      lines.push(
        `    ${d.domain}  applied ${d.applied}  behind ${d.behind}${d.owner ? '  owner' : ''}${d.failed ? `  FAILED: ${d.failed}` : ''}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
