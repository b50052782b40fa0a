import { resolve } from 'node:path';
import { RING_STORE_BOUNDS } from '../api/ring-store-options.js';
import { RingStoreError } from '../errors.js';
import { natsServers } from '../pipeline/cluster/nats-servers.js';
import type { Durability } from '../types.js';
import { parseOptions } from './args.js';

/**
 * `ringstore serve` configuration: every option has a flag and a RINGSTORE_* environment variable;
 * a flag wins over the environment, the environment over the default. Validated once, frozen.
 */
export interface ServeConfig {
  host: string;
  port: number;
  dir: string;
  durability: Durability;
  crcThreads: number | undefined;
  ringBytes: number | undefined;
  backpressureTimeoutMs: number | undefined;
  indexCacheBytes: number | undefined;
  instanceCacheSize: number | undefined;
  tokens: string | undefined;
  insecure: boolean;
  /** Serve the web console at /ui (default true). */
  console: boolean;
  bodyLimit: number;
  logLevel: string;
  /** Cluster mode (docs/CLUSTER.md): set by --nats, which needs --node-id. */
  cluster: ServeClusterConfig | undefined;
}

export interface ServeClusterConfig {
  servers: string[];
  nodeId: string;
  replicas: number | undefined;
  namespace: string | undefined;
  leaseTtlMs: number | undefined;
}

interface OptionSpec {
  flag: string;
  env: string;
  type: 'string' | 'boolean';
  help: string;
}

export const SERVE_OPTIONS: readonly OptionSpec[] = [
  { flag: 'host', env: 'RINGSTORE_HOST', type: 'string', help: 'address to bind (default 127.0.0.1)' },
  { flag: 'port', env: 'RINGSTORE_PORT', type: 'string', help: 'TCP port, 0 = any free port (default 8080)' },
  { flag: 'dir', env: 'RINGSTORE_DIR', type: 'string', help: 'data directory (default ./data)' },
  {
    flag: 'durability',
    env: 'RINGSTORE_DURABILITY',
    type: 'string',
    help: 'fsync | write | none (default fsync)',
  },
  {
    flag: 'crc-threads',
    env: 'RINGSTORE_CRC_THREADS',
    type: 'string',
    help: `CRC pool threads, 0 to ${RING_STORE_BOUNDS.crcThreads.max}; 0 = CRC on the producer (default: the store decides by the core count)`,
  },
  {
    flag: 'ring-bytes',
    env: 'RINGSTORE_RING_BYTES',
    type: 'string',
    help: `ring size in bytes, a power of two from ${RING_STORE_BOUNDS.ringBytes.min} to ${RING_STORE_BOUNDS.ringBytes.max} (default: the store decides)`,
  },
  {
    flag: 'backpressure-timeout-ms',
    env: 'RINGSTORE_BACKPRESSURE_TIMEOUT_MS',
    type: 'string',
    help: `how long an append waits for ring space before 503 BACKPRESSURE, ${RING_STORE_BOUNDS.backpressureTimeoutMs.min} to ${RING_STORE_BOUNDS.backpressureTimeoutMs.max} (default: the store decides)`,
  },
  {
    flag: 'index-cache-bytes',
    env: 'RINGSTORE_INDEX_CACHE_BYTES',
    type: 'string',
    help: `bytes of index files kept in memory by the writer and by the reader each, ${RING_STORE_BOUNDS.indexCacheBytes.min} to ${RING_STORE_BOUNDS.indexCacheBytes.max} (default 16 MiB)`,
  },
  {
    flag: 'instance-cache-size',
    env: 'RINGSTORE_INSTANCE_CACHE_SIZE',
    type: 'string',
    help: `instances whose version and idempotency keys the writer keeps in memory, ${RING_STORE_BOUNDS.instanceCacheSize.min} to ${RING_STORE_BOUNDS.instanceCacheSize.max} (default 100000)`,
  },
  {
    flag: 'tokens',
    env: 'RINGSTORE_TOKENS',
    type: 'string',
    help: 'JSON file of bearer tokens (SHA-256 hashes and scopes)',
  },
  {
    flag: 'insecure',
    env: 'RINGSTORE_INSECURE',
    type: 'boolean',
    help: 'allow a non-loopback host without tokens',
  },
  {
    flag: 'no-console',
    env: 'RINGSTORE_NO_CONSOLE',
    type: 'boolean',
    help: 'do not serve the web console at /ui',
  },
  {
    flag: 'body-limit',
    env: 'RINGSTORE_BODY_LIMIT',
    type: 'string',
    help: 'largest request body / NDJSON line in bytes (default 1048576)',
  },
  {
    flag: 'nats',
    env: 'RINGSTORE_NATS',
    type: 'string',
    help: 'cluster mode: nats-server URLs, comma separated (docs/CLUSTER.md)',
  },
  {
    flag: 'node-id',
    env: 'RINGSTORE_NODE_ID',
    type: 'string',
    help: "cluster mode: this node's unique name",
  },
  {
    flag: 'replicas',
    env: 'RINGSTORE_REPLICAS',
    type: 'string',
    help: 'cluster mode: replicas of a new domain stream, 1 to 5 (default 3 with three or more servers, else 1)',
  },
  {
    flag: 'namespace',
    env: 'RINGSTORE_NAMESPACE',
    type: 'string',
    help: 'cluster mode: prefix of the streams, subjects and buckets used (default ringstore)',
  },
  {
    flag: 'lease-ttl-ms',
    env: 'RINGSTORE_LEASE_TTL_MS',
    type: 'string',
    help: 'cluster mode: domain lease TTL when this node creates the lease bucket (default 10000)',
  },
  {
    flag: 'log-level',
    env: 'RINGSTORE_LOG_LEVEL',
    type: 'string',
    help: 'fatal | error | warn | info | debug | trace | silent (default info)',
  },
];

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function invalid(message: string): RingStoreError {
  return new RingStoreError('INVALID_OPTION', message);
}

/** `label`: where the value came from, as messages name it (`--port`, or `RINGSTORE_PORT (--port)`). */
function integer(label: string, raw: string | undefined, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^[0-9]+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw invalid(`${label} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return Number(raw);
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export function parseServeConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Readonly<ServeConfig> {
  const values = parseOptions(
    'serve',
    argv,
    Object.fromEntries(SERVE_OPTIONS.map((o) => [o.flag, { type: o.type }])),
  );
  const specOf = (flag: string) => SERVE_OPTIONS.find((o) => o.flag === flag) as OptionSpec;
  const pick = (flag: string): string | undefined => {
    const value = values[flag];
    if (typeof value === 'string') return value;
    return env[specOf(flag).env];
  };
  const label = (flag: string): string =>
    typeof values[flag] === 'string' ? `--${flag}` : `${specOf(flag).env} (--${flag})`;
  const flagOrEnv = (flag: string, name: string): boolean => {
    const raw = env[name];
    if (raw !== undefined && !['1', 'true', '0', 'false', ''].includes(raw)) {
      throw invalid(`${name} must be 1, true, 0 or false`);
    }
    return values[flag] === true || raw === '1' || raw === 'true';
  };
  const durability = pick('durability') ?? 'fsync';
  if (durability !== 'fsync' && durability !== 'write' && durability !== 'none') {
    throw invalid(`${label('durability')} must be fsync, write or none, got ${JSON.stringify(durability)}`);
  }
  const {
    ringBytes: ringBounds,
    crcThreads: crcBounds,
    backpressureTimeoutMs: waitBounds,
    indexCacheBytes: indexCacheBounds,
    instanceCacheSize: instanceCacheBounds,
  } = RING_STORE_BOUNDS;
  const ringBytes = integer(label('ring-bytes'), pick('ring-bytes'), ringBounds.min, ringBounds.max);
  if (ringBytes !== undefined && (ringBytes & (ringBytes - 1)) !== 0) {
    throw invalid(`${label('ring-bytes')} must be a power of two, got ${ringBytes}`);
  }
  const logLevel = pick('log-level') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel))
    throw invalid(`${label('log-level')} must be one of ${LOG_LEVELS.join(', ')}`);
  if (pick('dir') === '') throw invalid(`${label('dir')} must not be empty`);
  const host = pick('host') ?? '127.0.0.1';
  if (host.length === 0) throw invalid(`${label('host')} must not be empty`);
  const config: ServeConfig = {
    host,
    port: integer(label('port'), pick('port'), 0, 65_535) ?? 8080,
    dir: resolve(pick('dir') ?? './data'),
    durability,
    crcThreads: integer(label('crc-threads'), pick('crc-threads'), 0, crcBounds.max),
    ringBytes,
    backpressureTimeoutMs: integer(
      label('backpressure-timeout-ms'),
      pick('backpressure-timeout-ms'),
      waitBounds.min,
      waitBounds.max,
    ),
    indexCacheBytes: integer(
      label('index-cache-bytes'),
      pick('index-cache-bytes'),
      indexCacheBounds.min,
      indexCacheBounds.max,
    ),
    instanceCacheSize: integer(
      label('instance-cache-size'),
      pick('instance-cache-size'),
      instanceCacheBounds.min,
      instanceCacheBounds.max,
    ),
    tokens: pick('tokens'),
    insecure: flagOrEnv('insecure', 'RINGSTORE_INSECURE'),
    console: !flagOrEnv('no-console', 'RINGSTORE_NO_CONSOLE'),
    bodyLimit: integer(label('body-limit'), pick('body-limit'), 1024, 64 * 1024 * 1024) ?? 1024 * 1024,
    logLevel,
    cluster: clusterConfig(pick, label),
  };
  if (!isLoopback(config.host) && config.tokens === undefined && !config.insecure) {
    throw invalid(
      `refusing to listen on ${config.host} without --tokens: anyone who can reach it could read and append. Give --tokens FILE, or --insecure if a trusted network makes that acceptable`,
    );
  }
  return Object.freeze(config);
}

function clusterConfig(
  pick: (flag: string) => string | undefined,
  label: (flag: string) => string,
): ServeClusterConfig | undefined {
  const nats = pick('nats');
  const nodeId = pick('node-id');
  if (nats === undefined) {
    for (const flag of ['node-id', 'replicas', 'namespace', 'lease-ttl-ms']) {
      if (pick(flag) !== undefined) throw invalid(`--${flag} needs --nats (cluster mode)`);
    }
    return undefined;
  }
  const servers = natsServers(nats, label('nats'));
  if (nodeId === undefined) throw invalid('--nats needs --node-id: a name unique in the cluster');
  return {
    servers,
    nodeId,
    replicas: integer(label('replicas'), pick('replicas'), 1, 5),
    namespace: pick('namespace'),
    leaseTtlMs: integer(label('lease-ttl-ms'), pick('lease-ttl-ms'), 500, 600_000),
  };
}

export function serveUsage(): string {
  const lines = SERVE_OPTIONS.map((o) => {
    const flag = o.type === 'boolean' ? `--${o.flag}` : `--${o.flag} <value>`;
    return `  ${flag.padEnd(33)} ${o.env.padEnd(34)} ${o.help}`;
  });
  return `usage: ringstore serve [options]

Runs the HTTP API over a data directory (created when missing). SIGINT/SIGTERM drain and exit 0.
Every option is also an environment variable; a flag wins over the variable.

options:
${lines.join('\n')}
  -h, --help`;
}
