import type { FastifyInstance } from 'fastify';
import type { EventStore } from '../api/event-store.js';
import { TokenAuthority } from '../api/http/auth.js';
import { createHttpServer } from '../api/http/server.js';
import { RingStoreError } from '../errors.js';
import { startAdminSocket } from './admin-socket.js';
import type { ServeConfig } from './config.js';
import type { ServedStore } from './open-store.js';
import { checkStoreDirectory } from './store-dir.js';

/** How long a shutdown waits for requests in flight before it closes their connections. */
export const DRAIN_TIMEOUT_MS = 30_000;

export interface RunningService {
  app: FastifyInstance;
  store: EventStore;
  /** The address actually bound (port 0 becomes the chosen port). */
  url: string;
  /** Stops accepting, lets in-flight requests finish, ends live streams, then closes the store. */
  shutdown(reason: string): Promise<void>;
}

/**
 * Starts the HTTP service. The store is opened by `openStore` after the configuration and the
 * tokens file were checked, so a bad option never leaves a half-opened store behind.
 */
export async function startService(
  config: Readonly<ServeConfig>,
  openStore: (config: Readonly<ServeConfig>) => Promise<ServedStore>,
): Promise<RunningService> {
  checkStoreDirectory(config.dir, { mayCreate: true });
  const tokens = config.tokens === undefined ? undefined : TokenAuthority.fromFile(config.tokens);
  const { store, recovery = [], indexRebuilds = [] } = await openStore(config);
  let app: FastifyInstance;
  try {
    app = await createHttpServer(store, {
      bodyLimit: config.bodyLimit,
      tokens,
      console: config.console,
      logger: { level: config.logLevel },
    });
    for (const action of recovery) {
      app.log.warn(
        { recovery: action },
        `recovery at open: ${action.action} ${action.file}, ${action.from} → ${action.to} bytes (${action.reason}); ${action.quarantined} bytes moved aside to ${action.quarantine}`,
      );
    }
    for (const rebuild of indexRebuilds) {
      app.log.warn(
        { indexRebuild: rebuild },
        `index of domain ${rebuild.domain} rebuilt from its log at open (${rebuild.reason}): ${rebuild.batches} batches read`,
      );
    }
    await app.listen({ host: config.host, port: config.port }).catch((err: unknown) => {
      throw unusableAddress(config.host, config.port, err);
    });
  } catch (err) {
    await store.close();
    throw err;
  }
  const admin = await startAdminSocket(config.dir, store, app.log).catch((err: unknown) => {
    app.log.warn({ err }, 'no admin socket: it could not be opened; back up through POST /v1/admin/backup');
    return undefined;
  });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;
  app.log.info(
    { url, dir: config.dir, durability: config.durability, auth: tokens !== undefined },
    'ringstore listening',
  );
  let closing: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    closing ??= (async () => {
      app.log.info({ reason }, 'ringstore shutting down: draining requests');
      admin?.close();
      // Requests get DRAIN_TIMEOUT_MS to finish; then their connections are cut so the store can
      // still be closed (and synced) even if a client never reads its answer.
      const cut = setTimeout(() => {
        app.log.warn({ drainTimeoutMs: DRAIN_TIMEOUT_MS }, 'drain timeout: closing remaining connections');
        app.server.closeAllConnections();
      }, DRAIN_TIMEOUT_MS);
      cut.unref();
      await app.close();
      clearTimeout(cut);
      await store.close();
      app.log.info('ringstore stopped: store closed and synced');
    })();
    return closing;
  };
  return { app, store, url, shutdown };
}

export interface StopOptions {
  /**
   * Also stop when the parent process goes away. Set when npm started the server (`npx ringstore
   * serve`, an npm script without `exec`): npm runs it under `sh -c`, passes a SIGTERM only to
   * that shell, which dies of it and leaves the server orphaned, still holding its port and lock.
   */
  watchParent: boolean;
}

/** How often the parent process is checked when `watchParent` is set. */
const PARENT_CHECK_MS = 500;

/**
 * Wires SIGINT/SIGTERM to a clean shutdown (exit 0); a second signal exits at once (exit 130).
 * The handlers are installed before the service has started: a signal that arrives while the store
 * opens stops it once it is up (as PID 1, a signal without a handler would be ignored, not fatal).
 * When the start fails, the caller reports it and the handlers do nothing.
 */
export function exitOnSignals(starting: Promise<RunningService>, options: StopOptions): void {
  let stopping = false;
  let parentTimer: NodeJS.Timeout | undefined;
  let started: RunningService | undefined;
  starting.then(
    (service) => {
      started = service;
    },
    () => undefined,
  );
  const stop = (reason: string): void => {
    if (stopping) {
      started?.app.log.warn({ reason }, 'second signal: exiting without a clean shutdown');
      process.exit(130);
    }
    stopping = true;
    clearInterval(parentTimer);
    starting.then(
      (service) =>
        service.shutdown(reason).then(
          () => process.exit(0),
          (err: unknown) => {
            service.app.log.error({ err }, 'shutdown failed');
            process.exit(1);
          },
        ),
      () => undefined,
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  if (options.watchParent) {
    const parent = process.ppid;
    parentTimer = setInterval(() => {
      if (process.ppid !== parent) stop('parent process exited');
    }, PARENT_CHECK_MS);
    parentTimer.unref();
  }
}

/** What the system says when it cannot listen where --host and --port point. */
const LISTEN_REFUSALS: Readonly<Record<string, string>> = {
  EADDRINUSE: 'the port is in use',
  EADDRNOTAVAIL: 'the address is not one of this machine',
  EACCES: 'the port needs privileges',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name does not resolve',
};

/** A listen failure the caller's --host or --port caused, as INVALID_OPTION; other errors as they are. */
function unusableAddress(host: string, port: number, err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const why = code === undefined ? undefined : LISTEN_REFUSALS[code];
  if (why === undefined) return err;
  return new RingStoreError('INVALID_OPTION', `cannot listen on ${host}:${port}: ${why} (${code})`, {
    option: code === 'EADDRINUSE' || code === 'EACCES' ? 'port' : 'host',
  });
}
