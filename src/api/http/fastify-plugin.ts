import type { FastifyPluginAsync } from 'fastify';
import { RingStoreError } from '../../errors.js';
import type { EventStore } from '../event-store.js';
import { type HttpServerOptions, resolveHttpOptions } from './options.js';
import { mountRoutes } from './server.js';

/** Options of a `createHttpServer` that belong to the whole server, not to the routes. */
type ServerWideOption =
  | 'headersTimeoutMs'
  | 'requestTimeoutMs'
  | 'keepAliveTimeoutMs'
  | 'maxConnections'
  | 'logger'
  | 'logRequests';

/**
 * Options of the fastify plugin. `prefix` is fastify's own register option (routes then live under
 * `<prefix>/v1/…` and `<prefix>/health`); `tokens` turns bearer-token auth on for these routes only;
 * `bodyLimit`, `ingestInFlight`, `sseHeartbeatMs` and `retryAfterSeconds` are the limits of
 * docs/HTTP.md. Timeouts, the connection limit and the logger are the host application's.
 */
export interface RingstorePluginOptions extends Omit<HttpServerOptions, ServerWideOption> {
  /** The store to serve; the host application opens and closes it. */
  store: EventStore;
  prefix?: string;
}

const SERVER_WIDE: readonly ServerWideOption[] = [
  'headersTimeoutMs',
  'requestTimeoutMs',
  'keepAliveTimeoutMs',
  'maxConnections',
  'logger',
  'logRequests',
];

/**
 * Mounts the ringstore HTTP API on an existing fastify application, inside its own encapsulated
 * context: its JSON/NDJSON parsers, error and not-found handlers, auth and metrics hooks apply to
 * its routes only. `app.close()` ends live SSE streams; it never closes the store.
 *
 *   await app.register(ringstore, { store, prefix: '/events', tokens, bodyLimit: 256 * 1024 });
 */
export const ringstore: FastifyPluginAsync<RingstorePluginOptions> = async (app, options) => {
  const { store, prefix: _prefix, ...routeOptions } = options;
  if (store === undefined || typeof (store as { put?: unknown }).put !== 'function') {
    throw new RingStoreError('INVALID_OPTION', 'the ringstore plugin needs { store }: an EventStore');
  }
  for (const name of SERVER_WIDE) {
    if (name in routeOptions) {
      throw new RingStoreError(
        'INVALID_OPTION',
        `${name} belongs to the host fastify server, not to the ringstore plugin`,
      );
    }
  }
  mountRoutes(app, store, resolveHttpOptions(routeOptions));
};
