import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { RingStoreError } from '../../errors.js';
import { expectedVersionMatches, validateExpectedVersion } from '../../model/events.js';
import { validateConsumerName } from '../../model/names.js';
import { validatePosition } from '../../model/queries.js';
import type { ExpectedVersion } from '../../types.js';
import {
  CONSUMER_POSITIONS_DOMAIN,
  StoredConsumerPositions,
  validateFollowedDomain,
} from '../consumer-positions.js';
import type { EventStore } from '../event-store.js';
import { logEnd } from '../log-end.js';
import type { Scope } from './auth.js';
import { assertKnownQuery, GENERATION_HEADER, isPlainObject } from './wire.js';

/**
 * Durable consumer positions over HTTP (docs/HTTP.md, "Consumers"): a remote consumer reads where
 * it stands, follows the domain (SSE or reads) from there, and acknowledges what it handled. The
 * positions live in the store as for embedded consumers (src/api/consumer-positions.ts), so an
 * embedded and a remote consumer of one name share them.
 *
 *   GET  /v1/domains/:domain/consumers/:name        → { nextPosition, version }
 *   POST /v1/domains/:domain/consumers/:name/ack    { nextPosition, expectedVersion? } → same
 */

interface ConsumerParams {
  domain: string;
  name: string;
}

export interface ConsumerRouteHooks {
  authorize(request: FastifyRequest, domain: string, scope: Scope): void;
  requireJson(request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void): void;
}

const ACK_KEYS = new Set(['nextPosition', 'expectedVersion']);

function decodeAck(body: unknown): { nextPosition: number; expectedVersion: ExpectedVersion } {
  if (!isPlainObject(body)) throw new RingStoreError('BAD_REQUEST', 'the body must be a JSON object');
  for (const key in body) {
    if (!ACK_KEYS.has(key)) {
      throw new RingStoreError('BAD_REQUEST', `unknown field ${JSON.stringify(key.slice(0, 40))}`);
    }
  }
  return {
    nextPosition: validatePosition('nextPosition', body.nextPosition),
    expectedVersion: validateExpectedVersion(body.expectedVersion),
  };
}

export function mountConsumerRoutes(
  app: FastifyInstance,
  store: EventStore,
  hooks: ConsumerRouteHooks,
): void {
  const positions = new StoredConsumerPositions(store);

  function validateParams(params: ConsumerParams): void {
    validateFollowedDomain(params.domain);
    validateConsumerName(params.name);
  }

  app.get<{ Params: ConsumerParams; Querystring: Record<string, unknown> }>(
    '/v1/domains/:domain/consumers/:name',
    async (request, reply) => {
      validateParams(request.params);
      const { domain, name } = request.params;
      hooks.authorize(request, domain, 'read');
      assertKnownQuery(request.query, []);
      const position = await positions.load(name, domain);
      reply.header(GENERATION_HEADER, String(store.generation));
      return position;
    },
  );

  app.post<{ Params: ConsumerParams }>(
    '/v1/domains/:domain/consumers/:name/ack',
    { onRequest: hooks.requireJson },
    async (request, reply) => {
      validateParams(request.params);
      const { domain, name } = request.params;
      // A consumer reads its domain and writes its positions: both scopes, as for any append.
      hooks.authorize(request, domain, 'read');
      hooks.authorize(request, CONSUMER_POSITIONS_DOMAIN, 'append');
      const ack = decodeAck(request.body);
      const end = await logEnd(store, domain);
      if (ack.nextPosition > end) {
        throw new RingStoreError(
          'INVALID_QUERY',
          `nextPosition ${ack.nextPosition} is past the end of the log (${end})`,
          { option: 'nextPosition' },
        );
      }
      const current = await positions.load(name, domain);
      if (!expectedVersionMatches(ack.expectedVersion, current.version)) {
        throw new RingStoreError(
          'CONSUMER_CONFLICT',
          `consumer ${name} is at version ${current.version}, not ${String(ack.expectedVersion)}`,
          { actualVersion: current.version },
        );
      }
      // An ack that changes nothing stores nothing: repeating one does not grow the store.
      const result =
        ack.nextPosition === current.nextPosition
          ? current
          : await positions.store(name, domain, ack.nextPosition, current.version);
      reply.header(GENERATION_HEADER, String(store.generation));
      return result;
    },
  );
}
