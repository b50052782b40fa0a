import type { FastifyInstance, FastifyRequest } from 'fastify';
import { validateDomain } from '../../model/names.js';
import type { EventStore } from '../event-store.js';
import { logEnd } from '../log-end.js';
import type { Scope } from './auth.js';
import { assertKnownQuery, GENERATION_HEADER } from './wire.js';

/** A store that can tell how much disk a domain occupies (RingStore does). */
interface DiskUsageSource {
  diskBytes(domain: string): Promise<number>;
}

function diskUsageOf(store: EventStore): DiskUsageSource | undefined {
  const candidate = store as Partial<DiskUsageSource>;
  return typeof candidate.diskBytes === 'function' ? (candidate as DiskUsageSource) : undefined;
}

export interface DomainSummary {
  domain: string;
  /** Events in the domain's log: its next position. */
  events: number;
  /** Timestamp and generation of the last event; absent while the domain has none. */
  lastTimestamp?: number;
  lastGeneration?: number;
  /** Bytes its folder occupies; absent when the store does not report it. */
  diskBytes?: number;
}

/**
 * GET /v1/domains/:domain → { domain, events, lastTimestamp?, lastGeneration?, diskBytes? }: what the
 * web console lists per domain. Any store answers the count (the log's end) and the last event;
 * `diskBytes` comes from the store's optional `diskBytes(domain)`. A domain with no events yet
 * answers `{ events: 0 }` (and diskBytes 0), as every read of it does.
 */
export function mountDomainSummaryRoute(
  app: FastifyInstance,
  store: EventStore,
  authorize: (request: FastifyRequest, domain: string, scope: Scope) => void,
): void {
  app.get<{ Params: { domain: string }; Querystring: Record<string, unknown> }>(
    '/v1/domains/:domain',
    async (request, reply) => {
      const { domain } = request.params;
      validateDomain(domain);
      authorize(request, domain, 'read');
      assertKnownQuery(request.query, []);
      const events = await logEnd(store, domain);
      const summary: DomainSummary = { domain, events };
      if (events > 0) {
        const [last] = (await store.read(domain, { fromPosition: events - 1, limit: 1 })).events;
        if (last) {
          summary.lastTimestamp = last.timestamp;
          summary.lastGeneration = last.generation;
        }
      }
      const disk = diskUsageOf(store);
      if (disk) summary.diskBytes = await disk.diskBytes(domain);
      reply.header(GENERATION_HEADER, String(store.generation));
      return summary;
    },
  );
}
