import { createServer } from 'node:http';
import { parseEventsBody } from '../../src/api/http/events-body.js';
import { decodePutBody, putResultJson } from '../../src/api/http/wire.js';
import { parseAggregateId } from '../../src/model/ids.js';
import { validateAggregateType, validateDomain } from '../../src/model/names.js';
import { NullStore } from './null-store.js';

/**
 * What fastify costs on the append route: the same parsing, validation and 201 answer as the
 * HTTP layer, over the same NullStore as stub-server.ts, but on bare node:http with one regex for
 * routing. Appends only (anything else is a 404), no hooks, no metrics, no error mapping: a
 * measuring stick for bench/http/cpu.ts, not a server.
 */
const ROUTE = /^\/v1\/domains\/([^/]+)\/aggregates\/([^/]+)\/([^/]+)\/events$/;
const store = new NullStore();

const server = createServer((request, response) => {
  const match = request.method === 'POST' ? ROUTE.exec(request.url ?? '') : null;
  if (!match) {
    response.writeHead(404).end();
    return;
  }
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    try {
      const domain = match[1] as string;
      const type = match[2] as string;
      validateDomain(domain);
      validateAggregateType(type);
      const id = parseAggregateId(match[3] as string);
      const bytes = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      const { events, options } = decodePutBody(parseEventsBody(bytes));
      store.put(domain, type, id, events, options).then((result) => {
        const body = putResultJson(result);
        response
          .writeHead(201, {
            'content-type': 'application/json; charset=utf-8',
            'content-length': body.length,
            'ringstore-generation': String(store.generation),
            'ringstore-durability': result.durability,
          })
          .end(body);
      });
    } catch {
      response.writeHead(400).end();
    }
  });
});
server.keepAliveTimeout = 5_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  process.stdout.write(
    `${JSON.stringify({ msg: 'raw listening', url: `http://127.0.0.1:${address.port}` })}\n`,
  );
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
