import { RingStore, subscribe } from 'ringstore';

const store = await RingStore.open({ dir: './example-data' });
const id = store.newKey();
await store.put('billing', 'invoice', id, [{ type: 'Opened' }, { type: 'Paid', data: '{"amount":10}' }]);
const projected = [];
const project = async (event) => projected.push(event.position);

// 1. The backlog, then stop: endWhenCaughtUp ends the loop after the last backlog event (at once
//    when there is none). Remember where to resume.
let checkpoint = 0;
const backlog = subscribe(store, 'billing', {
  fromPosition: checkpoint,
  types: ['Paid'],
  endWhenCaughtUp: true,
});
for await (const event of backlog) {
  await project(event);
  checkpoint = event.position + 1; // or backlog.nextPosition
}
checkpoint = backlog.nextPosition; // also past events of other types
console.log(
  `backlog: ${projected.length} Paid event(s), ended '${backlog.endReason}', resume at ${checkpoint}`,
);

// 2. Live: resume from the checkpoint, no gap, no duplicate. The loop ends when the subscription
//    ends: close(), abort, break, or the store closing.
const subscription = subscribe(store, 'billing', { fromPosition: checkpoint, types: ['Paid'] });
setTimeout(() => store.put('billing', 'invoice', id, [{ type: 'Paid', data: '{"amount":5}' }]), 10);
for await (const event of subscription) {
  await project(event);
  console.log(`live: ${event.type} at position ${event.position}, caught up: ${subscription.caughtUp}`);
  break; // one live event is enough here
}
console.log(`ended '${subscription.endReason}', resume at ${subscription.nextPosition}`);
await store.close();
