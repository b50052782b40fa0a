import { instanceStream, RingStore, readStream } from 'ringstore';

const store = await RingStore.open({ dir: './example-data' });
const id = store.newKey();
const invoice = store.domain('billing').aggregate('invoice').instance(id);
const fromTime = Date.now();
for (let n = 1; n <= 30; n++)
  await invoice.put({ type: n % 3 === 0 ? 'Paid' : 'Billed', data: `{"n":${n}}` });

// readStream(store, domain, options) and instanceStream(store, domain, type, id, options),
// or through the facade:
const billing = store.domain('billing');
const paid = [];
for await (const event of billing.stream({ types: ['Paid'], fromTime, pageSize: 500 })) {
  paid.push(event.version); // one event at a time; at most one page (500 events) is held in memory
}

const history = billing.aggregate('invoice').instance(id).stream({ fromVersion: 10, toVersion: 20 });
const versions = [];
for await (const event of history) versions.push(event.version);
console.log(
  `${paid.length} Paid events since ${fromTime}; versions ${versions[0]}…${versions.at(-1)} of ${id}`,
);

// The same with the functions; a stream is pinned to store.generation when it is made.
const scan = readStream(store, 'billing', { fromTime });
let scanned = 0;
for await (const _ of scan) scanned++;
const tail = instanceStream(store, 'billing', 'invoice', id, { fromVersion: 29 });
for await (const event of tail) console.log(`version ${event.version}: ${event.type}`);
console.log(`${scanned} events at generation ${scan.generation}; continue at position ${scan.nextPosition}`);
await store.close();
