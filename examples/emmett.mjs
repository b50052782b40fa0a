import { CommandHandler, DeciderSpecification, STREAM_DOES_NOT_EXIST } from '@event-driven-io/emmett';
import { RingStore } from 'ringstore';
import { getRingStoreEventStore } from 'ringstore/emmett';

// Any open ringstore store: RingStore, StorageEngine, HttpEventStore, MemoryEventStore.
const store = await RingStore.open({ dir: './example-data' });
const eventStore = getRingStoreEventStore(store, { domain: 'bank' }); // default domain 'emmett'

// Events: { type: 'Deposited' | 'Withdrawn', data: { amount } }; commands: { kind, amount }.
const account = {
  initialState: () => ({ balance: 0 }),
  evolve: (state, e) => ({ balance: state.balance + (e.type === 'Deposited' ? 1 : -1) * e.data.amount }),
  decide: (c, state) => {
    if (c.kind === 'deposit') return { type: 'Deposited', data: { amount: c.amount } };
    if (state.balance < c.amount) throw new Error('insufficient funds');
    return [{ type: 'Withdrawn', data: { amount: c.amount } }];
  },
};

// emmett's own specification runs the decider (it throws when the outcome differs).
DeciderSpecification.for(account)([{ type: 'Deposited', data: { amount: 5 } }])
  .when({ kind: 'withdraw', amount: 5 })
  .then([{ type: 'Withdrawn', data: { amount: 5 } }]);

const handle = CommandHandler(account);
await handle(eventStore, 'account-17', (state) => account.decide({ kind: 'deposit', amount: 10 }, state), {
  retry: { onVersionConflict: 3 }, // reload and decide again on ExpectedVersionConflictError
});
await eventStore.appendToStream('account-18', [{ type: 'Deposited', data: { amount: 1 } }], {
  expectedStreamVersion: STREAM_DOES_NOT_EXIST, // or STREAM_EXISTS, NO_CONCURRENCY_CHECK, a bigint
});
const { state, currentStreamVersion } = await eventStore.aggregateStream('account-17', {
  evolve: account.evolve,
  initialState: account.initialState,
});
console.log(`account-17: balance ${state.balance} at stream version ${currentStreamVersion}`);
const { events } = await eventStore.readStream('account-18');
console.log(
  `account-18: ${events.map((e) => `${e.type} at stream position ${e.metadata.streamPosition}`).join(', ')}`,
);
await store.close();
