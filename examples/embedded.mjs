import { RingStore } from 'ringstore';

const store = await RingStore.open({ dir: './example-data' }); // not ./data: `npm start` serves that one
const person = store.domain('namespace').aggregate('person');
const id = store.newKey();

await person.instance(id).put({
  type: 'Registered',
  data: '{"first":"John"}',
  metadata: '{"correlationId":"signup-17","causationId":"cmd-3"}', // optional, returned by every read
});
await person.instance(id).put([{ type: 'NameChanged', data: '{"first":"Jaughn"}' }], {
  expectedVersion: 1, // or 'any' (default), 'none', 'exists'; a mismatch is VERSION_CONFLICT
  idempotencyKey: 'cmd-7f3a', // a retried put with this key returns the first result
});
const { version, events } = await person.instance(id).get({ fromVersion: 1 });
console.log(`person ${id} is at version ${version}: ${events.map((e) => e.type).join(', ')}`);
const page = await store.domain('namespace').read({ fromPosition: 0, types: ['Registered'], limit: 100 });
console.log(`${page.events.length} Registered event(s); the next read starts at ${page.nextPosition}`);

// The backlog first, then live commits, in position order, no gap, no duplicate. This loop stops
// after the backlog; without the break it would wait for live events until the store closes.
const subscription = store.domain('namespace').subscribe({ fromPosition: 0 });
for await (const event of subscription) {
  console.log(`position ${event.position}: ${event.type} ${new TextDecoder().decode(event.data)}`);
  if (subscription.caughtUp) break; // that was the last event of the backlog
}
await store.close(); // stops intake, drains the ring, fsyncs, ends every thread
