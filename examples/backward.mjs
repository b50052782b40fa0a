import { RingStore, subscribe } from 'ringstore';

const store = await RingStore.open({ dir: './example-data' });
const id = store.newKey();
for (let n = 1; n <= 25; n++)
  await store.put('billing', 'invoice', id, [{ type: n % 5 ? 'Billed' : 'Paid' }]);

// Backward: descending versions, from the last one unless fromVersion says otherwise.
const { version, events } = await store.get('billing', 'invoice', id, { direction: 'backward', limit: 3 });
console.log(`invoice at version ${version}, newest first: ${events.map((e) => e.version).join(', ')}`);
// The next page starts below the last version returned (over HTTP: nextVersion).
const older = await store.get('billing', 'invoice', id, {
  direction: 'backward',
  fromVersion: events.at(-1).version - 1,
  toVersion: 20, // the lowest version wanted (default 1)
});
console.log(`then: ${older.events.map((e) => `${e.version} ${e.type}`).join(', ')}`);

// From the end: no backlog, only events committed after subscribe() was called.
const live = subscribe(store, 'billing', { fromPosition: 'end' });
setTimeout(() => store.put('billing', 'invoice', id, [{ type: 'Voided' }]), 10);
for await (const event of live) {
  console.log(`live: ${event.type} at position ${event.position}`);
  break;
}
await store.close();
