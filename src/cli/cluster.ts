import { type ClusterStatus, readClusterStatus } from '../api/cluster/cluster-status.js';
import { RingStoreError } from '../errors.js';
import { parseOptions } from './args.js';

export const CLUSTER_USAGE = `usage: ringstore cluster status --nats <url>[,<url>…] [--namespace NAME] [--json]

Shows a ringstore cluster as NATS holds it (docs/CLUSTER.md): each domain stream (last sequence,
replicas, leader), each domain lease (owner), and each live node with what it applied per domain
and how far behind the stream it is.

options:
  --nats <urls>        nats-server URLs, comma separated (or RINGSTORE_NATS)
  --namespace <name>   the cluster's namespace (default ringstore, or RINGSTORE_NAMESPACE)
  --json               print the status as JSON
  -h, --help
`;

export async function runCluster(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [sub, ...rest] = args;
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
  const nats = (values.nats as string | undefined) ?? env.RINGSTORE_NATS;
  if (nats === undefined)
    throw new RingStoreError('INVALID_OPTION', 'cluster status needs --nats <url>[,<url>…]');
  const status = await readClusterStatus(
    nats.split(',').map((s) => s.trim()),
    (values.namespace as string | undefined) ?? env.RINGSTORE_NAMESPACE,
  );
  process.stdout.write(values.json === true ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
  return 0;
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
