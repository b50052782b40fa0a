import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { EventStore } from '../../src/api/event-store.js';
import { RingStore } from '../../src/api/ring-store.js';
import { StorageEngine } from '../../src/storage/storage-engine.js';
import type { CaseContext } from '../case.js';
import {
  type CaseResult,
  LatencyRecorder,
  nowSeconds,
  peakRssMb,
  round,
  runInFlight,
  throughput,
} from '../measure.js';
import { startNatsCluster } from '../nats-cluster.js';
import { BENCH_AGGREGATE_TYPE, BENCH_DOMAIN } from '../workload.js';

/**
 * Appends through a cluster (docs/CLUSTER.md) against the single-node store, in one child: three
 * nats-servers on loopback (started here, stopped at the end), then the same workload put by
 * `inFlight` lanes into
 *
 *   single   StorageEngine.put, durability fsync (the single-node store without the ring)
 *   r1       RingStore in cluster mode, domain stream with one replica (publish → ack → apply)
 *   r3       RingStore in cluster mode, three replicas (a quorum of two writes each message first)
 *
 * Each row has events/s, per-put latency p50/p99, and for the cluster rows events per JetStream
 * message (how much group commit each message carries) and the ratio to the single-node row.
 * Opt-in (`npm run bench cluster`): it needs nats-server, and three servers on one machine say
 * little about a real deployment, where the quorum write crosses the network.
 */
export async function run(context: CaseContext, variant: string): Promise<CaseResult[]> {
  if (variant !== 'compare') throw new Error(`unknown cluster variant ${variant}`);
  const { workload, config } = context;
  const nats = await startNatsCluster(3);
  const results: CaseResult[] = [];
  try {
    const systems: { id: string; open: (dir: string) => Promise<EventStore> }[] = [
      { id: 'single', open: async (dir) => StorageEngine.open(dir, { durability: 'fsync' }) },
      ...[1, 3].map((replicas) => ({
        id: `r${replicas}`,
        open: (dir: string) =>
          RingStore.open({
            dir,
            durability: 'fsync',
            cluster: { servers: nats.urls, nodeId: 'bench', namespace: `bench${replicas}`, replicas },
          }),
      })),
    ];
    // Each system gets an equal share of the case's time.
    const share = (context.deadline - nowSeconds()) / systems.length;
    for (const system of systems) {
      const dir = join(context.dir, system.id);
      mkdirSync(dir, { recursive: true });
      const store = await system.open(dir);
      const latencies = new LatencyRecorder(workload.batchCount);
      let events = 0;
      let outcome: Awaited<ReturnType<typeof runInFlight>>;
      try {
        outcome = await runInFlight(
          workload.batchCount,
          config.inFlight,
          nowSeconds() + share,
          async (batch) => {
            const id = workload.idOf(workload.instanceOf(batch));
            const result = await store.put(
              BENCH_DOMAIN,
              BENCH_AGGREGATE_TYPE,
              id,
              workload.inputEvents(batch),
            );
            events += result.lastVersion - result.firstVersion + 1;
          },
          latencies,
        );
      } finally {
        await store.close();
      }
      const notes: string[] = [`${config.inFlight} puts in flight`];
      const messages =
        store instanceof RingStore && store.node !== undefined ? store.status().publishedMessages : undefined;
      const single = results[0];
      if (messages !== undefined && messages > 0)
        notes.push(`${round(events / messages, 1)} events per JetStream message`);
      if (single !== undefined && system.id !== 'single') {
        notes.push(`${round(events / outcome.seconds / single.eventsPerSec, 3)}× the single-node store`);
      }
      results.push({
        id: `cluster ${system.id}`,
        kind: 'write',
        system: system.id === 'single' ? 'engine' : 'cluster',
        description:
          system.id === 'single'
            ? 'StorageEngine.put, fsync (single node)'
            : `RingStore.put (cluster mode), stream ${system.id.toUpperCase()}, 3 nats-servers on loopback`,
        ...throughput(events, (events / config.batchEvents) * workload.batchBytes, outcome.seconds),
        latencyP50Ms: latencies.percentile(50),
        latencyP99Ms: latencies.percentile(99),
        peakRssMb: peakRssMb(),
        capped: outcome.capped,
        notes,
      });
    }
  } finally {
    await nats.stop();
  }
  return results;
}
