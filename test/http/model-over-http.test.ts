import { describe, it } from 'vitest';
import type { EventStore } from '../../src/api/event-store.js';
import { HttpEventStore } from '../../src/api/http/client.js';
import { MemoryEventStore } from '../../src/model/memory-store.js';
import { ManualClock, runModelCheck } from '../support/model-check.js';
import { type RunningServer, startServer } from './helpers.js';

const SEED = Number(process.env.RINGSTORE_SEED ?? 20_261_124);

/**
 * The model-based check through the HTTP API: every event's data and metadata cross the wire in both
 * directions (metadataBase64 up, the data rule down), so whatever the harness generates (absent,
 * binary or JSON metadata, payloads up to 65,535 bytes) must read back byte for byte. "Reopen" is
 * a new client connecting to the same server. Reads never filter by an empty type list: the HTTP
 * API cannot express one.
 */
describe(`HTTP API over MemoryEventStore equals the model (seed ${SEED + 30}; set RINGSTORE_SEED to change)`, () => {
  it('sequential operations, data and metadata through the wire', async () => {
    const clock = new ManualClock();
    const servers = new Map<EventStore, { server: RunningServer; store: MemoryEventStore }>();
    const connect = async (running: { server: RunningServer; store: MemoryEventStore }) => {
      const client = await HttpEventStore.connect(running.server.url);
      servers.set(client, running);
      return client;
    };
    await runModelCheck(
      async () => {
        const store = new MemoryEventStore({ clock: clock.read });
        return connect({ server: await startServer(store), store });
      },
      async (client: EventStore) => {
        const running = servers.get(client)!;
        servers.delete(client);
        await client.close();
        return connect(running);
      },
      { seed: SEED + 30, numRuns: 15, clock, emptyTypeFilters: false },
    );
    for (const { server, store } of new Set(servers.values())) {
      await server.close();
      await store.close();
    }
  });
});
