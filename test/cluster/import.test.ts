import { describe, expect, it } from 'vitest';
import { ClusterStore } from '../../src/api/cluster/cluster-store.js';
import { importStore } from '../../src/api/cluster/import-store.js';
import { StorageEngine } from '../../src/storage/storage-engine.js';
import { clusterSuite } from '../support/cluster-suite.js';
import { mulberry32 } from '../support/prng.js';

const suite = clusterSuite('import');
const tempDir = () => suite.tempDir();

describe('ringstore cluster import', () => {
  it('moves a single-node store into empty domain streams, keeping positions, versions, keys and timestamps', async () => {
    const seed = Number(process.env.RINGSTORE_SEED ?? 20_261_202);
    const random = mulberry32(seed);
    const sourceDir = tempDir();
    let clock = 1_700_000_000_000;
    const source = StorageEngine.open(sourceDir, { durability: 'write', clock: () => clock });
    const keyed: { domain: string; id: number; key: string; firstVersion: number }[] = [];
    for (let i = 0; i < 300; i++) {
      const domain = random() < 0.6 ? 'billing' : 'orders';
      const id = 1 + Math.floor(random() * 8);
      const events = Array.from({ length: 1 + Math.floor(random() * 3) }, (_, e) => ({
        type: e === 0 ? 'Opened' : 'Changed',
        data: `${domain}-${i}-${e}`,
        metadata: random() < 0.3 ? `{"i":${i}}` : undefined,
      }));
      const key = random() < 0.3 ? `k${i}` : undefined;
      // Several puts per turn share a generation (group commit); the clock moves now and then.
      const put = source.put(domain, 'acct', id, events, key ? { idempotencyKey: key } : undefined);
      if (i % 7 === 6) {
        const result = await put;
        clock += Math.floor(random() * 5);
        if (key) keyed.push({ domain, id, key, firstVersion: result.firstVersion });
      } else if (key) {
        put.then((r) => keyed.push({ domain, id, key, firstVersion: r.firstVersion }));
      }
    }
    await source.put('billing', 'acct', 1, [{ type: 'Last' }]);
    const before = {
      billing: (await source.read('billing', { limit: 10_000 })).events,
      orders: (await source.read('orders', { limit: 10_000 })).events,
    };
    await source.close();

    const imported = await importStore(sourceDir, { servers: suite.cluster.urls, namespace: 'imp' });
    expect(imported.map((d) => [d.domain, d.events])).toEqual([
      ['billing', before.billing.length],
      ['orders', before.orders.length],
    ]);
    for (const d of imported) expect(d.messages).toBeLessThanOrEqual(d.batches);

    const node = await ClusterStore.open(tempDir(), {
      durability: 'write',
      cluster: { servers: suite.cluster.urls, nodeId: 'n', namespace: 'imp' },
    });
    try {
      for (const domain of ['billing', 'orders'] as const) {
        await node.waitForPosition(domain, before[domain].length - 1);
        const after = (await node.read(domain, { limit: 10_000 })).events;
        const strip = (events: typeof after) => events.map(({ generation: _g, ...rest }) => rest);
        expect(strip(after)).toEqual(strip(before[domain]));
      }
      // Idempotency keys came along: a retried keyed put replays its original result.
      expect(keyed.length).toBeGreaterThan(10);
      for (const k of keyed.slice(0, 10)) {
        const again = await node.put(k.domain, 'acct', k.id, [{ type: 'Opened', data: 'retry' }], {
          idempotencyKey: k.key,
        });
        expect(again).toMatchObject({ replayed: true, firstVersion: k.firstVersion });
      }
      // A second import of the same store is refused: the streams are not empty.
      await expect(
        importStore(sourceDir, { servers: suite.cluster.urls, namespace: 'imp' }),
      ).rejects.toMatchObject({
        code: 'INVALID_OPTION',
      });
    } finally {
      await node.close();
    }
  }, 60_000);
});
