import { RingStoreError } from '../../errors.js';
import { DEFAULT_NAMESPACE, NAMESPACE_PATTERN, NODE_ID_PATTERN } from '../../pipeline/cluster/nats-names.js';
import { natsServers } from '../../pipeline/cluster/nats-servers.js';

/** RingStore.open's `cluster` option (docs/CLUSTER.md): cluster mode on NATS JetStream. */
export interface ClusterOptions {
  /** nats-server client URLs (one or more of the cluster), as an array or comma separated. */
  servers: string | readonly string[];
  /** This node's name: unique in the cluster, [A-Za-z0-9][A-Za-z0-9_-]{0,62}. */
  nodeId: string;
  /** Replicas of each new domain stream (default 3 when the cluster has three or more servers, else 1). */
  replicas?: number;
  /** Prefix of every stream, subject and bucket this cluster uses (default `ringstore`). */
  namespace?: string;
  /** Lease TTL: the lease bucket's max_age when this node creates it (default 10,000 ms). */
  leaseTtlMs?: number;
  /** How long a put may wait for an owner, and an unanswered publish is retried (default 30,000 ms). */
  putTimeoutMs?: number;
}

/** The cluster options in effect: servers as a list, every default but `replicas` applied. */
export interface ResolvedClusterOptions {
  servers: string[];
  nodeId: string;
  replicas: number | undefined;
  namespace: string;
  leaseTtlMs: number;
  putTimeoutMs: number;
}

export const CLUSTER_DEFAULTS = Object.freeze({ leaseTtlMs: 10_000, putTimeoutMs: 30_000 });

const KNOWN = new Set(['servers', 'nodeId', 'replicas', 'namespace', 'leaseTtlMs', 'putTimeoutMs']);

/** Validates the `cluster` option (INVALID_OPTION names the field) and applies its defaults. */
export function resolveClusterOptions(options: unknown): ResolvedClusterOptions {
  const bad = (option: string, message: string) => new RingStoreError('INVALID_OPTION', message, { option });
  if (typeof options !== 'object' || options === null)
    throw bad('cluster', 'cluster options must be an object');
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!KNOWN.has(key)) throw bad(key, `cluster.${key}: unknown option`);
  }
  const servers = natsServers(o.servers, 'servers', 'cluster.servers');
  if (typeof o.nodeId !== 'string' || !NODE_ID_PATTERN.test(o.nodeId)) {
    throw bad('nodeId', 'cluster.nodeId must match [A-Za-z0-9][A-Za-z0-9_-]{0,62}');
  }
  if (
    o.namespace !== undefined &&
    !(typeof o.namespace === 'string' && NAMESPACE_PATTERN.test(o.namespace))
  ) {
    throw bad('namespace', 'cluster.namespace must match [A-Za-z0-9][A-Za-z0-9_-]{0,31}');
  }
  if (
    o.replicas !== undefined &&
    !(typeof o.replicas === 'number' && Number.isInteger(o.replicas) && o.replicas >= 1 && o.replicas <= 5)
  ) {
    throw bad('replicas', 'cluster.replicas must be an integer from 1 to 5');
  }
  for (const name of ['leaseTtlMs', 'putTimeoutMs'] as const) {
    const value = o[name];
    if (value !== undefined && !(typeof value === 'number' && Number.isInteger(value) && value >= 100)) {
      throw bad(name, `cluster.${name} must be an integer >= 100`);
    }
  }
  return Object.freeze({
    servers,
    nodeId: o.nodeId,
    replicas: o.replicas as number | undefined,
    namespace: (o.namespace as string | undefined) ?? DEFAULT_NAMESPACE,
    leaseTtlMs: (o.leaseTtlMs as number | undefined) ?? CLUSTER_DEFAULTS.leaseTtlMs,
    putTimeoutMs: (o.putTimeoutMs as number | undefined) ?? CLUSTER_DEFAULTS.putTimeoutMs,
  });
}
