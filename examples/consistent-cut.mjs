import { RingStore, readStream } from 'ringstore';

async function collect(stream) {
  const events = [];
  for await (const event of stream) events.push(event);
  return events;
}

const store = await RingStore.open({ dir: './example-data' });
const id = store.newKey();
await store.put('billing', 'invoice', id, [{ type: 'Opened' }]);
await store.put('shipping', 'parcel', id, [{ type: 'Packed' }]);

const G = store.generation;
// Writers may append meanwhile: all three reads describe the same moment, generation G.
const writer = Promise.all([
  store.put('billing', 'invoice', id, [{ type: 'Paid' }]),
  store.put('shipping', 'parcel', id, [{ type: 'Shipped' }]),
]);
const invoices = await collect(readStream(store, 'billing', { atGeneration: G }));
const parcels = await collect(readStream(store, 'shipping', { atGeneration: G }));
const { version } = await store.get('billing', 'invoice', id, { atGeneration: G });
await writer;
const now = await store.get('billing', 'invoice', id);
console.log(`at generation ${G}: invoice ${id} at version ${version}, now at version ${now.version}`);
console.log(
  `the cut holds ${invoices.filter((e) => e.aggregateId === id).length} invoice event(s) and ${parcels.filter((e) => e.aggregateId === id).length} parcel event(s)`,
);
await store.close();
