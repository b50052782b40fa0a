import { STATUS_CODES } from 'node:http';
import { type Duplex, PassThrough, Readable } from 'node:stream';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import { type ErrorCode, RingStoreError } from '../../errors.js';
import { parseAggregateId } from '../../model/ids.js';
import { LIMITS } from '../../model/limits.js';
import { validateAggregateType, validateDomain, validateEventType } from '../../model/names.js';
import {
  GET_OPTION_NAMES,
  READ_OPTION_NAMES,
  validateDirection,
  validateInstanceRead,
  validateReadOptions,
} from '../../model/queries.js';
import type { PutResult } from '../../types.js';
import { checkClientAppend } from '../consumer-positions.js';
import type { EventStore } from '../event-store.js';
import { waitForPosition } from '../wait-position.js';
import { canBackup, parseBackupRequest, streamBackup } from './admin-backup.js';
import { type Principal, type Scope, TokenAuthority } from './auth.js';
import { CONSOLE_ROUTES, mountConsoleRoutes } from './console-routes.js';
import { mountConsumerRoutes } from './consumer-routes.js';
import { mountDomainSummaryRoute } from './domain-summary.js';
import { parseEventsBody } from './events-body.js';
import { failureLogLevel, publicError, toRingStoreError } from './http-errors.js';
import { ingestResults } from './ingest.js';
import { HttpMetrics } from './metrics.js';
import { type HttpServerOptions, type ResolvedHttpOptions, resolveHttpOptions } from './options.js';
import { instancePage } from './paging.js';
import { eventsAnswer } from './read-answer.js';
import { parseJsonSafely, utf8Text } from './safe-json.js';
import { openSseStream, type SseStream } from './sse.js';
import {
  assertKnownQuery,
  DURABILITY_HEADER,
  decodePutBody,
  GENERATION_HEADER,
  payloadBytes,
  putResultJson,
  queryInteger,
  queryTypes,
  REQUEST_ID_HEADER,
} from './wire.js';

export type { HttpServerOptions } from './options.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | undefined;
  }
}

interface InstanceParams {
  domain: string;
  type: string;
  id: string;
}

interface DomainParams {
  domain: string;
}

type Query = Record<string, unknown>;

/** The media type of every JSON answer (fastify's own for the objects it serialises). */
const JSON_TYPE = 'application/json; charset=utf-8';
const APPEND_ROUTE = '/v1/domains/:domain/aggregates/:type/:id/events';

/** Seconds to announce in Retry-After for the 503 codes. */
const RETRY_AFTER: Partial<Record<string, number>> = { STORE_FAILED: 30, STORE_CLOSED: 5 };

function storeFailedFlag(store: EventStore): boolean {
  return (store as { failed?: unknown }).failed === true;
}

/**
 * The ringstore HTTP API (DESIGN.md §5, docs/HTTP.md) over any EventStore. The caller owns the
 * store: closing the returned instance stops the server and ends live streams, never the store.
 */
export async function createHttpServer(
  store: EventStore,
  options: HttpServerOptions = {},
): Promise<FastifyInstance> {
  const o = resolveHttpOptions(options);
  let routes: MountedRoutes | undefined;
  const app = Fastify({
    logger: o.logger,
    logController: new LogController({ disableRequestLogging: !o.logRequests }),
    // A pino child per request (bindings serialised to JSON) costs more than the rest of a small
    // append's logging; without request logging the few per-request lines (5xx errors) name their
    // request id themselves. With logRequests, fastify's usual child loggers are kept.
    ...(o.logRequests ? {} : { childLoggerFactory: (logger: FastifyBaseLogger) => logger }),
    bodyLimit: o.bodyLimit,
    requestTimeout: o.requestTimeoutMs,
    keepAliveTimeout: o.keepAliveTimeoutMs,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // Shedding during shutdown is done by the onRequest hook below, in the API's error shape.
    return503OnClosing: false,
    // No router limit below node's own on the request head (16 KiB unless node runs with
    // --max-http-header-size): every path segment reaches the API's validation and is refused with
    // its code (INVALID_NAME, INVALID_ID), not BAD_REQUEST.
    routerOptions: { maxParamLength: 16 * 1024, ignoreTrailingSlash: false },
    // A bad URL encoding and similar router-level faults get the same error shape as the rest.
    frameworkErrors: (error, _request, reply) => {
      void routes?.sendError(reply, toRingStoreError(error));
    },
    // A request node's HTTP parser refuses (bad Content-Length or chunking, a header it cannot
    // read, oversized headers) never reaches fastify: it is answered here, in the API's shape.
    clientErrorHandler: answerUnparsable,
  });
  app.server.headersTimeout = o.headersTimeoutMs;
  app.server.maxConnections = o.maxConnections;
  routes = mountRoutes(app, store, o);
  await app.ready();
  return app;
}

export interface MountedRoutes {
  /** Answers with an error in the API's shape (and counts it). */
  sendError(reply: FastifyReply, error: RingStoreError): FastifyReply;
}

/**
 * Registers the API's routes, parsers, error and not-found handlers and hooks on `app`: the root
 * instance of createHttpServer, or an encapsulated plugin context (src/api/http/fastify-plugin.ts),
 * where they stay inside the plugin's prefix. Server-wide settings (timeouts, connection limit,
 * logger) are the owner's of the root instance.
 */
export function mountRoutes(
  app: FastifyInstance,
  store: EventStore,
  o: Readonly<ResolvedHttpOptions>,
): MountedRoutes {
  const metrics = new HttpMetrics(store, o.storeMetrics);
  const activeStreams = new Set<SseStream>();
  // Health turns 503 for good once the store reported STORE_FAILED or STORE_CLOSED to any request.
  let unhealthy: RingStoreError | undefined;
  // Routes answered without a token: health, and the console's static files (the page asks for one).
  const publicUrls = new Set([`${app.prefix}/health`, ...CONSOLE_ROUTES.map((r) => `${app.prefix}${r}`)]);
  const appendUrl = `${app.prefix}${APPEND_ROUTE}`;
  app.decorateRequest('principal', undefined);

  app.removeAllContentTypeParsers();
  // The append body's bytes are scanned once and its events' data kept as views of them
  // (parseEventsBody); the other JSON bodies are small and decoded and parsed whole.
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    try {
      const bytes = body as Buffer;
      done(
        null,
        request.routeOptions.url === appendUrl ? parseEventsBody(bytes) : parseJsonSafely(utf8Text(bytes)),
      );
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  // NDJSON is consumed by the ingest handler as a stream, never buffered by a parser.
  app.addContentTypeParser('application/x-ndjson', (_request, _payload, done) => done(null, undefined));

  function sendError(reply: FastifyReply, error: RingStoreError): FastifyReply {
    if (error.code === 'STORE_FAILED' || error.code === 'STORE_CLOSED') unhealthy ??= error;
    metrics.rejectedRequests.inc({ code: error.code });
    if (error.status === 503) {
      reply.header('retry-after', String(RETRY_AFTER[error.code] ?? o.retryAfterSeconds));
    }
    if (error.code === 'UNAUTHORIZED') reply.header('www-authenticate', 'Bearer');
    // fastify's request id: the same reqId the server logs for this request, to quote in a report.
    const requestId = String(reply.request.id);
    reply.header(REQUEST_ID_HEADER, requestId);
    const wire = { ...publicError(error), requestId };
    return reply.code(error.status).type(JSON_TYPE).send({ error: wire });
  }

  app.setErrorHandler((err, request, reply) => {
    const error = toRingStoreError(err);
    const level = failureLogLevel(error);
    try {
      if (level === 'error') request.log.error({ err, reqId: request.id }, 'request failed');
      else if (level === 'warn')
        request.log.warn({ code: error.code, reason: error.message, reqId: request.id }, 'request failed');
    } catch {
      // The logger's error serializer read a property that throws (a custom store's error): the
      // answer still goes out in the API's shape, and the log says what it can.
      request.log.error(
        { code: error.code, reqId: request.id },
        'request failed with a value that cannot be read',
      );
    }
    return sendError(reply, error);
  });
  app.setNotFoundHandler((_request, reply) => sendError(reply, new RingStoreError('NOT_FOUND')));

  // Set when close() begins: requests that still arrive on open keep-alive connections are shed
  // with 503 STORE_CLOSED (Retry-After) and Connection: close, so clients move to another instance.
  let closing = false;
  // Callback-style hooks: no promise per request on the hot path.
  app.addHook('onRequest', (_request, reply, done) => {
    if (!closing) return done();
    reply.header('connection', 'close');
    done(new RingStoreError('STORE_CLOSED', 'the server is shutting down'));
  });
  app.addHook('onResponse', (request, reply, done) => {
    metrics.observeRequest(request.method, request.routeOptions.url, reply.statusCode, reply.elapsedTime);
    done();
  });

  const tokens = o.tokens;
  if (tokens) {
    app.addHook('onRequest', (request, _reply, done) => {
      if (publicUrls.has(request.routeOptions.url as string)) return done();
      const principal = tokens.authenticate(request.headers.authorization);
      if (!principal) return done(new RingStoreError('UNAUTHORIZED'));
      request.principal = principal;
      done();
    });
  }

  function authorize(request: FastifyRequest, domain: string, scope: Scope): void {
    if (tokens && !(request.principal && TokenAuthority.allows(request.principal, domain, scope))) {
      throw new RingStoreError('FORBIDDEN', `this token may not ${scope} on domain ${domain}`, { scope });
    }
  }

  function requireMediaType(type: string) {
    return (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void => {
      const header = request.headers['content-type'];
      // The exact type, as clients almost always send it, is checked without building strings.
      if (header === type || header === `${type}; charset=utf-8`) {
        done();
        return;
      }
      const [essence = '', ...parameters] = typeof header === 'string' ? header.toLowerCase().split(';') : [];
      if (essence.trim() !== type) {
        done(new RingStoreError('UNSUPPORTED_MEDIA_TYPE', `this route accepts ${type} only`));
        return;
      }
      // Bodies are UTF-8: text declared in another charset would be stored as other characters.
      const charset = parameters.map((p) => p.trim()).find((p) => p.startsWith('charset='));
      if (charset !== undefined && !UTF8_CHARSETS.has(charset.slice('charset='.length).replaceAll('"', ''))) {
        done(new RingStoreError('UNSUPPORTED_MEDIA_TYPE', `this route accepts ${type} in UTF-8 only`));
        return;
      }
      done();
    };
  }

  function countAppended(result: PutResult, events: number, bytes: number): void {
    if (result.replayed) return;
    metrics.appended.batches++;
    metrics.appended.events += events;
    metrics.appended.bytes += bytes;
  }

  function validateInstance(params: InstanceParams): bigint {
    validateDomain(params.domain);
    validateAggregateType(params.type);
    return parseAggregateId(params.id);
  }

  app.post<{ Params: InstanceParams }>(
    APPEND_ROUTE,
    { onRequest: requireMediaType('application/json'), bodyLimit: o.bodyLimit },
    async (request, reply) => {
      const { domain, type } = request.params;
      const id = validateInstance(request.params);
      authorize(request, domain, 'append');
      const { events, options: putOptions } = decodePutBody(request.body);
      checkClientAppend(domain, type, id, events);
      const result = await store.put(domain, type, id, events, putOptions);
      countAppended(result, events.length, payloadBytes(events));
      reply.header(GENERATION_HEADER, String(store.generation));
      reply.header(DURABILITY_HEADER, result.durability);
      reply.code(result.replayed ? 200 : 201).type(JSON_TYPE);
      return putResultJson(result);
    },
  );

  app.get<{ Params: InstanceParams; Querystring: Query }>(
    '/v1/domains/:domain/aggregates/:type/:id/events',
    async (request, reply) => {
      const { domain, type } = request.params;
      const id = validateInstance(request.params);
      authorize(request, domain, 'read');
      const query = request.query;
      assertKnownQuery(query, [...GET_OPTION_NAMES, 'waitForPosition']);
      const limit = queryInteger(query, 'limit') ?? LIMITS.defaultReadLimit;
      if (limit > LIMITS.maxReadLimit) {
        throw new RingStoreError('INVALID_QUERY', `limit must be at most ${LIMITS.maxReadLimit}`, {
          option: 'limit',
        });
      }
      const getOptions = {
        direction: validateDirection(query.direction),
        fromVersion: queryInteger(query, 'fromVersion'),
        toVersion: queryInteger(query, 'toVersion'),
        atGeneration: queryInteger(query, 'atGeneration'),
        verifyCrc: queryFlag(query, 'verifyCrc'),
        limit,
      };
      const valid = validateInstanceRead(getOptions);
      const wait = queryInteger(query, 'waitForPosition');
      if (wait !== undefined) await waitForPosition(store, domain, wait);
      // A domain with no events yet reads as empty, as embedded: names are never declared.
      const result = await store.get(domain, type, id, getOptions);
      reply.header(GENERATION_HEADER, String(store.generation));
      reply.type(JSON_TYPE);
      return eventsAnswer({ version: result.version }, result.events, false, instancePage(result, valid));
    },
  );

  app.get<{ Params: DomainParams; Querystring: Query }>(
    '/v1/domains/:domain/events',
    async (request, reply) => {
      const { domain } = request.params;
      validateDomain(domain);
      authorize(request, domain, 'read');
      const query = request.query;
      assertKnownQuery(query, [...READ_OPTION_NAMES, 'waitForPosition']);
      const readOptions = {
        fromPosition: queryInteger(query, 'fromPosition'),
        limit: queryInteger(query, 'limit'),
        types: queryTypes(query),
        fromTime: queryInteger(query, 'fromTime'),
        toTime: queryInteger(query, 'toTime'),
        atGeneration: queryInteger(query, 'atGeneration'),
        verifyCrc: queryFlag(query, 'verifyCrc'),
      };
      validateReadOptions(readOptions);
      const wait = queryInteger(query, 'waitForPosition');
      if (wait !== undefined) await waitForPosition(store, domain, wait);
      // A domain with no events yet reads as empty, as embedded: names are never declared.
      const result = await store.read(domain, readOptions);
      reply.header(GENERATION_HEADER, String(store.generation));
      reply.type(JSON_TYPE);
      return eventsAnswer({}, result.events, true, { nextPosition: result.nextPosition });
    },
  );

  app.get<{ Params: DomainParams; Querystring: Query }>(
    '/v1/domains/:domain/subscribe',
    // No HEAD twin: a HEAD answer has no body, so a stream behind it would never be flushed.
    { exposeHeadRoute: false },
    async (request, reply) => {
      const { domain } = request.params;
      validateDomain(domain);
      authorize(request, domain, 'read');
      const query = request.query;
      assertKnownQuery(query, ['fromPosition', 'types']);
      // `end`: only events committed from now on (the log's end is read when the stream starts).
      let fromPosition: number | 'end' =
        query.fromPosition === 'end' ? 'end' : (queryInteger(query, 'fromPosition') ?? 0);
      const lastEventId = request.headers['last-event-id'];
      if (lastEventId !== undefined) {
        // A reconnecting EventSource repeats the original URL; the header is the newer truth.
        const last = queryInteger({ 'Last-Event-ID': lastEventId }, 'Last-Event-ID') as number;
        if (last >= Number.MAX_SAFE_INTEGER) {
          throw new RingStoreError(
            'INVALID_QUERY',
            `Last-Event-ID must be a position below ${Number.MAX_SAFE_INTEGER}`,
            { option: 'Last-Event-ID' },
          );
        }
        fromPosition = last + 1;
      }
      const types = queryTypes(query);
      if (types) for (const t of types) validateEventType(t);
      const stream = openSseStream({
        store,
        domain,
        fromPosition,
        types,
        heartbeatMs: o.sseHeartbeatMs,
        active: activeStreams,
      });
      reply.hijack();
      await stream(reply.raw);
    },
  );

  mountConsumerRoutes(app, store, { authorize, requireJson: requireMediaType('application/json') });
  mountDomainSummaryRoute(app, store, authorize);
  if (o.console) mountConsoleRoutes(app);

  app.post('/v1/ingest', { onRequest: requireMediaType('application/x-ndjson') }, async (request, reply) => {
    const results = ingestResults(request.raw, {
      store,
      maxLineBytes: o.bodyLimit,
      maxInFlight: o.ingestInFlight,
      authorize: (domain) => {
        try {
          validateDomain(domain);
          authorize(request, domain, 'append');
          return undefined;
        } catch (err) {
          return err as RingStoreError;
        }
      },
      onAppended: countAppended,
      onError: (error, cause) => {
        if (error.code === 'STORE_FAILED' || error.code === 'STORE_CLOSED') unhealthy ??= error;
        if (failureLogLevel(error) === 'error') {
          request.log.error({ err: cause, reqId: request.id }, 'ingest line failed');
        }
        metrics.rejectedRequests.inc({ code: error.code });
      },
    });
    reply.type('application/x-ndjson; charset=utf-8');
    return reply.send(Readable.from(results, { objectMode: false }));
  });

  app.post(
    '/v1/admin/backup',
    { onRequest: requireMediaType('application/json') },
    async (request, reply) => {
      if (tokens && !(request.principal && TokenAuthority.allows(request.principal, '*', 'admin'))) {
        throw new RingStoreError('FORBIDDEN', 'this token may not run admin operations (scope admin on *)', {
          scope: 'admin',
        });
      }
      if (!canBackup(store)) throw new RingStoreError('NOT_FOUND', 'this store cannot take backups');
      const backup = parseBackupRequest(request.body);
      const lines = new PassThrough();
      void streamBackup(
        store,
        backup,
        (line) => lines.write(line),
        (err) => request.log.error({ err }, 'backup failed'),
      ).finally(() => lines.end());
      reply.type('application/x-ndjson; charset=utf-8');
      return reply.send(lines);
    },
  );

  app.post('/v1/keys', async (_request, reply) => {
    reply.header(GENERATION_HEADER, String(store.generation));
    reply.code(201);
    return { id: store.newKey().toString() };
  });

  app.get('/v1/domains', async (request, reply) => {
    const visible = tokens
      ? store
          .domains()
          .filter((d) => request.principal && TokenAuthority.allows(request.principal, d, 'read'))
      : store.domains();
    reply.header(GENERATION_HEADER, String(store.generation));
    return { domains: visible, generation: store.generation };
  });

  app.get('/health', async (_request, reply) => {
    const failure = unhealthy ?? (storeFailedFlag(store) ? new RingStoreError('STORE_FAILED') : undefined);
    if (failure) return sendError(reply, failure);
    return { status: 'ok', generation: store.generation };
  });

  app.get('/metrics', async (_request, reply) => {
    reply.type('text/plain; version=0.0.4; charset=utf-8');
    return metrics.metricsText();
  });

  const unwatch = store.watch((notice) => {
    if (notice.closed) unhealthy ??= new RingStoreError('STORE_CLOSED');
  });
  app.addHook('onClose', async () => {
    unwatch();
  });
  app.addHook('preClose', async () => {
    closing = true;
    for (const stream of activeStreams)
      stream.end(new RingStoreError('STORE_CLOSED', 'the server is shutting down'));
  });
  return { sendError };
}

function queryFlag(query: Query, name: string): boolean | undefined {
  const raw = query[name];
  if (raw === undefined) return undefined;
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw new RingStoreError('INVALID_QUERY', `${name} must be true or false`, { option: name });
}

/** The charset parameters a body may declare: it is read as UTF-8 (of which ASCII is a part). */
const UTF8_CHARSETS: ReadonlySet<string> = new Set(['utf-8', 'utf8', 'us-ascii', 'ascii']);

/** Node's parser errors that are not a malformed request, as the catalog names them. */
const PARSER_REFUSALS: Readonly<Record<string, ErrorCode>> = {
  ERR_HTTP_REQUEST_TIMEOUT: 'REQUEST_TIMEOUT',
  HPE_HEADER_OVERFLOW: 'HEADERS_TOO_LARGE',
};

/**
 * The answer to a request the HTTP parser refused, in the API's error shape (status and code from
 * the catalog: 408, 431, else 400), then the connection is destroyed, as node's own handler does.
 * Nothing is written while a response is in flight on the socket (a pipelined request behind a
 * stream), which a raw answer would corrupt.
 */
function answerUnparsable(error: Error & { code?: string }, socket: Duplex): void {
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && inFlight?.headersSent !== true) {
    const refusal = new RingStoreError((error.code && PARSER_REFUSALS[error.code]) || 'BAD_REQUEST');
    const body = JSON.stringify({ error: publicError(refusal) });
    socket.write(
      `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
