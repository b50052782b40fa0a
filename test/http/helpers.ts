import type { FastifyInstance } from 'fastify';
import type { EventStore } from '../../src/api/event-store.js';
import { createHttpServer, type HttpServerOptions } from '../../src/api/http/server.js';

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Starts the HTTP API on 127.0.0.1, port 0 (a free port), over `store`. */
export async function startServer(store: EventStore, options: HttpServerOptions = {}): Promise<RunningServer> {
  const app = await createHttpServer(store, options);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return {
    app,
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    close: () => app.close(),
  };
}
