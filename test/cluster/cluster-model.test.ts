import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { ClusterStore } from '../../src/api/cluster/cluster-store.js';
import type { EventStore } from '../../src/api/event-store.js';
import { runModelCheck } from '../support/model-check.js';
import { type NatsCluster, startNatsCluster } from '../support/nats-cluster.js';

const SEED = Number(process.env.RINGSTORE_SEED ?? 20_261_202);

let cluster: NatsCluster;
const dirs: string[] = [];
let runs = 0;

beforeAll(async () => {
  cluster = await startNatsCluster(3);
});

afterAll(async () => {
  await cluster?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe(`ClusterStore equals MemoryEventStore (model-based, seed ${SEED}; set RINGSTORE_SEED to change)`, () => {
  it('one node writing through JetStream (R1 streams), close and reopen catching up from its store', async () => {
    // Each run: a fresh namespace and directory; a reopen keeps both.
    const where = new WeakMap<EventStore, { dir: string; namespace: string }>();
    const open = async (dir: string, namespace: string) => {
      const store = await ClusterStore.open(dir, {
        durability: 'write',
        cluster: { servers: cluster.urls, nodeId: 'm', namespace, replicas: 1, putTimeoutMs: 10_000 },
      });
      where.set(store, { dir, namespace });
      return store;
    };
    await runModelCheck(
      async () => {
        const dir = mkdtempSync(join(tmpdir(), 'ringstore-cluster-model-'));
        dirs.push(dir);
        return open(dir, `m${runs++}`);
      },
      async (store) => {
        const { dir, namespace } = where.get(store)!;
        await store.close();
        return open(dir, namespace);
      },
      { seed: SEED, numRuns: 12, storeGeneration: false },
    );
  }, 240_000);
});
