import { MemoryEventStore } from '../../src/model/memory-store.js';
import { eventStoreContract } from '../contract/event-store-contract.js';

eventStoreContract('MemoryEventStore', { open: async () => new MemoryEventStore() });
