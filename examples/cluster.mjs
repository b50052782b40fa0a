import { RingStore } from 'ringstore';

// Two cluster nodes (docs/CLUSTER.md) in one process, for the example: each has its own store
// directory and follows every domain stream. Point RINGSTORE_NATS at your nats-servers.
// (`ClusterStore.open(dir, options)` from 'ringstore/cluster' is the same call.)
const servers = process.env.RINGSTORE_NATS ?? 'nats://127.0.0.1:4222';
const a = await RingStore.open({ dir: './example-data/a', cluster: { servers, nodeId: 'a' } });
const b = await RingStore.open({ dir: './example-data/b', cluster: { servers, nodeId: 'b' } });

// Through a: a takes the domain's lease and writes it. Through b: forwarded to a.
const id = a.newKey();
await a.put('billing', 'invoice', id, [{ type: 'Opened', data: '{"amount":10}' }], {
  expectedVersion: 'none',
});
const paid = await b.put('billing', 'invoice', id, [{ type: 'Paid' }], { expectedVersion: 1 });
console.log(
  `Paid at version ${paid.lastVersion}, position ${paid.firstPosition}, generation ${paid.generation}`,
);

// Read-your-writes on the node that did not write: wait until it has applied the position.
await b.waitForPosition('billing', paid.firstPosition);
const { version, events } = await b.get('billing', 'invoice', id);
console.log(`on b: version ${version}: ${events.map((e) => e.type).join(', ')}`);
for (const node of [a, b]) {
  const [billing] = node.status().domains;
  console.log(`${node.node}: applied ${billing.applied}, owner ${billing.owner}`);
}
await b.close();
await a.close();
