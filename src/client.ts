/**
 * `ringstore/client`: the typed HTTP client. `HttpEventStore` implements the same `EventStore`
 * interface as the embedded store, over a ringstore server's HTTP API (docs/HTTP.md).
 *
 *   import { HttpEventStore } from 'ringstore/client';
 *   const store = await HttpEventStore.connect('http://127.0.0.1:8080', { token });
 */
export type { Consumer, ConsumerHandler, ConsumerOptions, ConsumerRunResult } from './api/consumer.js';
export type { ConsumerPosition } from './api/consumer-positions.js';
export type { AggregateIdInput, CommitNotice, EventStore } from './api/event-store.js';
export { HttpEventStore, type HttpEventStoreOptions } from './api/http/client.js';
export { RingStoreError } from './errors.js';
export type * from './types.js';
