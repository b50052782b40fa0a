import { HttpEventStore } from '../../src/api/http/client.js';
import { MemoryEventStore } from '../../src/model/memory-store.js';
import { eventStoreContract } from '../contract/event-store-contract.js';
import { startServer } from './helpers.js';

eventStoreContract('HTTP API over MemoryEventStore', {
  open: async () => {
    const store = new MemoryEventStore();
    const server = await startServer(store);
    return HttpEventStore.connect(server.url, {
      onClose: async () => {
        await server.close();
        await store.close();
      },
    });
  },
});
