/**
 * `ringstore/emmett`: an emmett (`@event-driven-io/emmett`, an optional peer dependency) EventStore
 * over any ringstore store, embedded or the HTTP client. emmett's CommandHandler, DeciderCommandHandler
 * and everything else written against emmett's EventStore run on it.
 *
 *   import { RingStore } from 'ringstore';
 *   import { getRingStoreEventStore } from 'ringstore/emmett';
 *
 *   const store = await RingStore.open({ dir: './data' });
 *   const eventStore = getRingStoreEventStore(store, { domain: 'shop' });
 *   await eventStore.appendToStream('cart-42', [{ type: 'ItemAdded', data: { sku: 'a' } }]);
 */
export {
  getRingStoreEventStore,
  RingStoreEmmettDefaultStreamVersion,
  type RingStoreEmmettEventStore,
  type RingStoreEmmettOptions,
  type RingStoreReadEvent,
  type RingStoreReadEventMetadata,
} from './api/emmett.js';
export { MAX_STREAM_NAME_BYTES, type StreamAddress } from './api/stream-name-registry.js';
export { RingStoreError } from './errors.js';
