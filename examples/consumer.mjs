import { RingStore } from 'ringstore';

const options = { domain: 'billing', types: ['Paid'], endWhenCaughtUp: true };
let store = await RingStore.open({ dir: './example-data' });
const id = store.newKey();
await store.put('billing', 'invoice', id, [{ type: 'Opened' }, { type: 'Paid', data: '{"amount":10}' }]);

// A durable consumer keeps its position in the store (domain ringstore-consumers). At-least-once:
// the position moves past an event only after the handler returned for it.
const mailer = store.consumer('invoice-mailer', options);
const first = await mailer.run(async (event) =>
  console.log(`mailed: ${event.type} at position ${event.position}`),
);
console.log(`run 1 ended '${first.endReason}' at position ${first.nextPosition}`);

// A handler that throws stops the run before its event: the next run hands that event out again.
await store.put('billing', 'invoice', id, [{ type: 'Paid', data: '{"amount":5}' }]);
await mailer
  .run(() => Promise.reject(new Error('mail server down')))
  .catch((err) => {
    console.log(`run 2 failed: ${err.message}`);
  });
await store.close();

// After a restart, a consumer of the same name resumes from the stored position.
store = await RingStore.open({ dir: './example-data' });
const resumed = store.consumer('invoice-mailer', options);
console.log(`after the restart: resume at position ${(await resumed.position()).nextPosition}`);
await resumed.run(async (event) => console.log(`mailed: ${event.type} at position ${event.position}`));

// Live: without endWhenCaughtUp a run waits for new events until close() (or an AbortSignal).
const live = store.consumer('invoice-mailer', { domain: 'billing', types: ['Paid'] });
const running = live.run(async (event) => {
  console.log(`live: ${event.type} at position ${event.position}`);
  void live.close(); // not awaited inside the handler: close() waits for the run
});
await store.put('billing', 'invoice', id, [{ type: 'Paid', data: '{"amount":1}' }]);
console.log(
  `live run ended '${(await running).endReason}' at position ${(await live.position()).nextPosition}`,
);
await store.close();
