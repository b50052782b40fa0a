import { handleCommand, RingStore } from 'ringstore';

// Events: { type: 'Deposited' | 'Withdrawn', data: { amount } }; commands: { kind, amount }.
// In TypeScript: const account: Decider<{ balance: number }, Command, Event> = { … }.
const account = {
  initialState: () => ({ balance: 0 }),
  evolve: (state, e) => ({ balance: state.balance + (e.type === 'Deposited' ? 1 : -1) * e.data.amount }),
  decide: (c, state) => {
    if (c.kind === 'deposit') return { type: 'Deposited', data: { amount: c.amount } };
    if (state.balance < c.amount) throw new Error('insufficient funds');
    return [{ type: 'Withdrawn', data: { amount: c.amount } }];
  },
};

const store = await RingStore.open({ dir: './example-data' });
const id = store.newKey();
const ref = { domain: 'bank', aggregateType: 'account', id };

const { newState, newEvents, nextExpectedVersion, result, attempts } = await handleCommand(
  store,
  ref,
  { kind: 'deposit', amount: 10 },
  account,
  { maxRetries: 3 },
);
console.log(`balance ${newState.balance} after ${newEvents.length} event(s), version ${nextExpectedVersion}`);
console.log(`appended at position ${result.firstPosition} in ${attempts} attempt(s)`);

// Concurrent commands on one instance: each conflict reloads and decides again.
await Promise.all([3, 4].map((amount) => handleCommand(store, ref, { kind: 'withdraw', amount }, account)));
try {
  await handleCommand(store, ref, { kind: 'withdraw', amount: 100 }, account);
} catch (err) {
  console.log(`refused: ${err.message}`);
}
const { version } = await store.get('bank', 'account', id);
console.log(`account ${id} is at version ${version}`);
await store.close();
