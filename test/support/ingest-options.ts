import type { EventStore } from '../../src/api/event-store.js';
import type { IngestOptions } from '../../src/api/http/ingest.js';

/** NDJSON ingest into `store` as the route runs it, with lines of up to 1 MiB, every domain allowed. */
export function ingestOptions(store: EventStore, maxInFlight: number): IngestOptions {
  return {
    store,
    maxLineBytes: 1 << 20,
    maxInFlight,
    authorize: () => undefined,
    onAppended: () => {},
    onError: () => {},
  };
}
