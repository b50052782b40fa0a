import { RingStoreError } from '../../errors.js';
import type { TokenAuthority } from './auth.js';
import type { StoreMetrics } from './metrics.js';

export interface HttpServerOptions {
  /** Largest request body in bytes (JSON routes), and largest NDJSON line. Default 1 MiB. */
  bodyLimit?: number;
  /** Bearer-token authority; without it every request is allowed (loopback use). */
  tokens?: TokenAuthority;
  /** Time allowed to receive request headers (slowloris guard). Default 10 s. */
  headersTimeoutMs?: number;
  /** Time allowed to receive a whole request. Default 120 s (bulk NDJSON bodies are large). */
  requestTimeoutMs?: number;
  /** Idle time before a keep-alive connection is closed. Default 5 s. */
  keepAliveTimeoutMs?: number;
  /** Most simultaneous connections; further ones are dropped. Default 1024. */
  maxConnections?: number;
  /** Most unsettled puts per NDJSON ingest request. Default 64. */
  ingestInFlight?: number;
  /** Interval of SSE keep-alive comments. Default 15 s. */
  sseHeartbeatMs?: number;
  /** Seconds announced in Retry-After for BACKPRESSURE answers. Default 1. */
  retryAfterSeconds?: number;
  /** fastify/pino logger: false (default), true, or pino options. */
  logger?: boolean | Record<string, unknown>;
  /** Log every request (fastify's request logging). Default false: it costs throughput. */
  logRequests?: boolean;
  /** The store's internals for /metrics; default: the store's own `metrics()` method, if any. */
  storeMetrics?: () => StoreMetrics;
  /** Serve the web console at /ui (static files; the API calls it makes are authorized as any). Default true. */
  console?: boolean;
}

export type ResolvedHttpOptions = Required<Omit<HttpServerOptions, 'tokens' | 'storeMetrics'>> & {
  tokens: TokenAuthority | undefined;
  storeMetrics: (() => StoreMetrics) | undefined;
};

export const HTTP_DEFAULTS = Object.freeze({
  bodyLimit: 1024 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 120_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 1024,
  ingestInFlight: 64,
  sseHeartbeatMs: 15_000,
  retryAfterSeconds: 1,
  logger: false,
  logRequests: false,
  console: true,
});

const POSITIVE_INTEGERS = [
  'bodyLimit',
  'headersTimeoutMs',
  'requestTimeoutMs',
  'keepAliveTimeoutMs',
  'maxConnections',
  'ingestInFlight',
  'sseHeartbeatMs',
  'retryAfterSeconds',
] as const;

/** Applies defaults and validates every option once, at start; the result is frozen. */
export function resolveHttpOptions(options: HttpServerOptions = {}): Readonly<ResolvedHttpOptions> {
  const resolved = {
    ...HTTP_DEFAULTS,
    tokens: undefined,
    storeMetrics: undefined,
    ...options,
  } as ResolvedHttpOptions;
  for (const name of POSITIVE_INTEGERS) {
    const value = resolved[name];
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new RingStoreError('INVALID_OPTION', `${name} must be a positive integer, got ${String(value)}`);
    }
  }
  if (resolved.headersTimeoutMs > resolved.requestTimeoutMs) {
    throw new RingStoreError('INVALID_OPTION', 'headersTimeoutMs must not exceed requestTimeoutMs');
  }
  return Object.freeze(resolved);
}
