import { afterEach, describe, expect, it } from 'vitest';
import { SCENARIOS } from '../../bench/http/scenarios.js';
import { MemoryEventStore } from '../../src/model/memory-store.js';
import { type RunningServer, rawRequest, startServer } from './helpers.js';

let server: RunningServer | undefined;
const store = new MemoryEventStore();

afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('HTTP load-test scenarios', () => {
  it('send requests the API accepts, and count the events they carried', async () => {
    server = await startServer(store);
    for (const scenario of SCENARIOS) {
      const counters = { events: 0 };
      const definitions = scenario.requests(counters, 'ringstore');
      let expected = 0;
      for (let round = 0; round < 3; round++) {
        for (const definition of definitions) {
          const request = definition.setupRequest?.({}, {}) ?? {};
          const response = await rawRequest(server.port, request.method ?? 'GET', request.path ?? '/', {
            headers: request.headers ?? {},
            ...(request.body === undefined ? {} : { body: request.body }),
          });
          expect({ scenario: scenario.name, status: response.status }).toEqual({
            scenario: scenario.name,
            status: request.method === 'POST' && !request.path?.endsWith('/ingest') ? 201 : 200,
          });
          if (request.path?.endsWith('/ingest')) {
            const lines = response.text.trim().split('\n');
            expect(lines.every((l) => JSON.parse(l).ok === true)).toBe(true);
            expected += lines.length * 10;
          } else if (request.method === 'POST') {
            expected += scenario.eventsPerWrite;
          }
          definition.onResponse?.(response.status, response.text, {});
        }
      }
      expect({ scenario: scenario.name, events: counters.events }).toEqual({
        scenario: scenario.name,
        events: expected,
      });
    }
  });
});
