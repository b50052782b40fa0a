import { request as httpRequest } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { afterEach } from 'vitest';
import type { EventStore } from '../../src/api/event-store.js';
import { createHttpServer, type HttpServerOptions } from '../../src/api/http/server.js';
import { MemoryEventStore } from '../../src/model/memory-store.js';

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Starts the HTTP API on 127.0.0.1, port 0 (a free port), over `store`. */
export async function startServer(
  store: EventStore,
  options: HttpServerOptions = {},
): Promise<RunningServer> {
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

/**
 * One API server per test: `start()` serves a fresh MemoryEventStore, `start(options, store)` the
 * given store, in place of the server and store of an earlier start (both closed first); after each
 * test the last ones are closed. Call it at the top level of a test file.
 */
export function serverPerTest(): {
  readonly store: EventStore;
  start(options?: HttpServerOptions, store?: EventStore): Promise<RunningServer>;
} {
  let server: RunningServer | undefined;
  let store: EventStore = new MemoryEventStore();
  const stop = async () => {
    await server?.close();
    server = undefined;
    await store.close();
  };
  afterEach(stop);
  return {
    get store() {
      return store;
    },
    async start(options = {}, given = new MemoryEventStore()) {
      await stop();
      store = given;
      server = await startServer(given, options);
      return server;
    },
  };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The parsed body; tests read arbitrary fields of it. */
  // biome-ignore lint/suspicious/noExplicitAny: test helper over untyped JSON answers
  json(): any;
}

/**
 * One request through node:http, with the path sent exactly as given (fetch would normalise `..`
 * and re-encode), and the body as given (no content-type unless in `headers`).
 */
export function rawRequest(
  port: number,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      { host: '127.0.0.1', port, method, path, headers: options.headers ?? {}, agent: false },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            text,
            json: () => JSON.parse(text),
          });
        });
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    if (options.body !== undefined) request.write(options.body);
    request.end();
  });
}

export function postJson(port: number, path: string, body: unknown, headers: Record<string, string> = {}) {
  return rawRequest(port, 'POST', path, {
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** Asserts the one error shape of the API and returns the error object. */
export function errorOf(response: RawResponse): { code: string; message: string; [k: string]: unknown } {
  const body = response.json();
  if (typeof body?.error?.code !== 'string' || typeof body.error.message !== 'string') {
    throw new Error(`not an error body: ${response.text.slice(0, 200)}`);
  }
  // Every error answer names its request, in the body and in a header, the same id.
  if (typeof body.error.requestId !== 'string' || body.error.requestId.length === 0) {
    throw new Error(`error without requestId: ${response.text.slice(0, 200)}`);
  }
  if (response.headers['x-request-id'] !== body.error.requestId) {
    throw new Error(`x-request-id ${String(response.headers['x-request-id'])} ≠ ${body.error.requestId}`);
  }
  return body.error;
}
