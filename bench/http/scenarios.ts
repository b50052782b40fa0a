import type { RequestDefinition } from 'autocannon';
import { seededRandom } from '../workload.js';

/**
 * The load-test scenarios. Each builds autocannon request definitions over pools of bodies made
 * up front from a seeded PRNG, so the generator does no JSON work while measuring, and the same
 * bodies go to ringstore and to the bare ceiling server.
 */

export const HTTP_DOMAIN = 'bench';
export const HTTP_AGGREGATE = 'item';
const EVENT_TYPES = ['Registered', 'Renamed', 'Moved', 'Closed'];
/** Instances the appends spread over: far more than connections, so puts rarely share an instance. */
const INSTANCES = 100_000;
const POOL = 4096;

export interface Counters {
  /** Events the target accepted (2xx answers times the events they carried). */
  events: number;
}

export interface Scenario {
  name: string;
  description: string;
  /** Events one write request carries. */
  eventsPerWrite: number;
  requests(counters: Counters, target: 'ringstore' | 'bare'): RequestDefinition[];
}

function eventPayload(random: () => number, i: number): Record<string, unknown> {
  return {
    type: EVENT_TYPES[i % EVENT_TYPES.length],
    data: {
      seq: i,
      name: `person-${Math.floor(random() * 1e9)}`,
      score: Math.floor(random() * 1000),
      tags: ['a', 'b'],
    },
  };
}

function idPool(seed: number): string[] {
  const random = seededRandom(seed);
  return Array.from({ length: POOL }, () => String(1 + Math.floor(random() * INSTANCES)));
}

function appendBodies(eventsPerBody: number, seed: number): string[] {
  const random = seededRandom(seed);
  return Array.from({ length: POOL }, (_, b) =>
    JSON.stringify({
      events: Array.from({ length: eventsPerBody }, (_, i) => eventPayload(random, b * eventsPerBody + i)),
    }),
  );
}

function appendRequest(eventsPerBody: number, seed: number, counters: Counters): RequestDefinition {
  const ids = idPool(seed);
  const bodies = appendBodies(eventsPerBody, seed + 1);
  let next = 0;
  return {
    setupRequest(request) {
      const i = next++ % POOL;
      request.method = 'POST';
      request.path = `/v1/domains/${HTTP_DOMAIN}/aggregates/${HTTP_AGGREGATE}/${ids[i]}/events`;
      request.headers = { 'content-type': 'application/json' };
      request.body = bodies[i] as string;
      return request;
    },
    onResponse(status) {
      if (status >= 200 && status < 300) counters.events += eventsPerBody;
    },
  };
}

const OK_LINE = /"ok":true/g;

function ingestRequest(
  lines: number,
  eventsPerLine: number,
  seed: number,
  counters: Counters,
  target: string,
): RequestDefinition {
  const random = seededRandom(seed);
  const ids = idPool(seed + 2);
  const bodies = Array.from({ length: 256 }, (_, b) => {
    const out: string[] = [];
    for (let l = 0; l < lines; l++) {
      const events = Array.from({ length: eventsPerLine }, (_, i) => eventPayload(random, i));
      const id = ids[(b * lines + l) % POOL];
      out.push(JSON.stringify({ domain: HTTP_DOMAIN, aggregateType: HTTP_AGGREGATE, id, events }));
    }
    return `${out.join('\n')}\n`;
  });
  let next = 0;
  return {
    setupRequest(request) {
      request.method = 'POST';
      request.path = '/v1/ingest';
      request.headers = { 'content-type': 'application/x-ndjson' };
      request.body = bodies[next++ % bodies.length] as string;
      return request;
    },
    onResponse(status, body) {
      if (status < 200 || status >= 300) return;
      // ringstore answers one result per line; the bare server answers 204 for the whole body.
      counters.events +=
        target === 'bare' ? lines * eventsPerLine : (body.match(OK_LINE)?.length ?? 0) * eventsPerLine;
    },
  };
}

function readRequest(seed: number): RequestDefinition {
  const ids = idPool(seed);
  let next = 0;
  return {
    setupRequest(request) {
      request.method = 'GET';
      request.path = `/v1/domains/${HTTP_DOMAIN}/aggregates/${HTTP_AGGREGATE}/${ids[next++ % POOL]}/events?limit=20`;
      request.headers = {};
      request.body = undefined;
      return request;
    },
  };
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'append-1',
    description: 'POST …/events with 1 JSON event, across 100k instances',
    eventsPerWrite: 1,
    requests: (counters) => [appendRequest(1, 101, counters)],
  },
  {
    name: 'append-10',
    description: 'POST …/events with 10 JSON events, across 100k instances',
    eventsPerWrite: 10,
    requests: (counters) => [appendRequest(10, 202, counters)],
  },
  {
    name: 'ingest-ndjson',
    description: 'POST /v1/ingest, 50 lines of 10 events per request',
    eventsPerWrite: 500,
    requests: (counters, target) => [ingestRequest(50, 10, 303, counters, target)],
  },
  {
    name: 'mixed',
    description: 'alternating 10-event appends and instance reads (GET …/events?limit=20)',
    eventsPerWrite: 10,
    // The read ids come from append-10's pool, so reads hit instances that exist.
    requests: (counters) => [appendRequest(10, 404, counters), readRequest(202)],
  },
];
