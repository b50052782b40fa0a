import { HttpEventStore } from 'ringstore/client';

// The same EventStore interface as RingStore, over the HTTP API of a running server
// (`npm start`, or `npx ringstore serve`).
const url = process.env.RINGSTORE_URL ?? 'http://127.0.0.1:8080';
const remote = await HttpEventStore.connect(url, { token: process.env.RINGSTORE_TOKEN });
const id = remote.newKey();
await remote.put('billing', 'invoice', id, [{ type: 'Opened', data: '{"amount":10}' }]);
const { version, events } = await remote.get('billing', 'invoice', id);
console.log(`invoice ${id} is at version ${version}: ${new TextDecoder().decode(events[0].data)}`);
await remote.close();
