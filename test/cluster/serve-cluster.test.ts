import { describe, expect, it, vi } from 'vitest';
import { readClusterStatus } from '../../src/api/cluster/cluster-status.js';
import { HttpEventStore } from '../../src/api/http/client.js';
import { formatStatus } from '../../src/cli/cluster.js';
import { parseServeConfig } from '../../src/cli/config.js';
import { runCli } from '../../src/cli/main.js';
import { openServeStore } from '../../src/cli/open-store.js';
import { type RunningService, startService } from '../../src/cli/serve.js';
import { capture } from '../support/capture.js';
import { clusterSuite } from '../support/cluster-suite.js';

const suite = clusterSuite('serve-cluster');

function serveArgs(nodeId: string): string[] {
  const dir = suite.tempDir();
  return [
    '--dir',
    dir,
    '--port',
    '0',
    '--log-level',
    'silent',
    '--durability',
    'write',
    '--nats',
    suite.cluster.urls.join(','),
    '--node-id',
    nodeId,
    '--namespace',
    'serve',
  ];
}

describe('ringstore serve --nats', () => {
  it('serves a cluster node over HTTP, with cluster metrics and `cluster status`', async () => {
    const services: RunningService[] = [];
    try {
      for (const node of ['n1', 'n2'])
        services.push(await startService(parseServeConfig(serveArgs(node), {}), openServeStore));
      const [one, two] = await Promise.all(services.map((s) => HttpEventStore.connect(s.url)));
      const put = await one!.put('billing', 'invoice', 42, [{ type: 'Opened', data: '{"a":1}' }], {
        expectedVersion: 'none',
      });
      expect(put).toMatchObject({ firstVersion: 1, generation: 1 });
      // Through the other node: forwarded to the owner.
      const second = await two!.put('billing', 'invoice', 42, [{ type: 'Paid' }], { expectedVersion: 1 });
      expect(second).toMatchObject({ firstVersion: 2, firstPosition: 1, generation: 2 });

      // Read-your-writes through the other node: wait until it has applied position 1.
      const read = await fetch(`${services[1]!.url}/v1/domains/billing/events?waitForPosition=1`);
      expect(read.status).toBe(200);
      expect(((await read.json()) as { events: unknown[] }).events).toHaveLength(2);
      const instance = await fetch(
        `${services[1]!.url}/v1/domains/billing/aggregates/invoice/42/events?waitForPosition=1`,
      );
      expect(((await instance.json()) as { version: number }).version).toBe(2);

      const metrics = await (await fetch(`${services[0]!.url}/metrics`)).text();
      expect(metrics).toMatch(/ringstore_cluster_owner\{domain="billing"\} 1/);
      expect(metrics).toMatch(/ringstore_cluster_leases_taken_total 1/);
      expect(metrics).toMatch(/ringstore_cluster_applied_generation\{domain="billing"\} 2/);
      const metricsTwo = await (await fetch(`${services[1]!.url}/metrics`)).text();
      expect(metricsTwo).toMatch(/ringstore_cluster_owner\{domain="billing"\} 0/);
      expect(metricsTwo).toMatch(/ringstore_cluster_forwarded_puts_total 1/);

      // Heartbeats are written every second: wait (on a busy machine, a little longer) for both.
      let status = await readClusterStatus(suite.cluster.urls, 'serve');
      for (let i = 0; i < 50; i++) {
        const caughtUp = status.nodes.filter((n) => n.domains.some((d) => d.applied === 2));
        if (caughtUp.length === 2) break;
        await new Promise((r) => setTimeout(r, 200));
        status = await readClusterStatus(suite.cluster.urls, 'serve');
      }
      expect(status.streams).toMatchObject([{ domain: 'billing', lastSequence: 2, replicas: 3 }]);
      expect(status.leases).toMatchObject([{ domain: 'billing', node: 'n1' }]);
      expect(status.nodes.map((n) => n.node)).toEqual(['n1', 'n2']);
      for (const node of status.nodes)
        expect(node.domains).toMatchObject([{ domain: 'billing', applied: 2, behind: 0 }]);
      const text = formatStatus(status);
      expect(text).toContain('billing  last 2  R3');
      expect(text).toContain('owner n1');
      // The same through the CLI.
      const io = capture();
      try {
        expect(
          await runCli([
            'cluster',
            'status',
            '--nats',
            suite.cluster.urls.join(','),
            '--namespace',
            'serve',
            '--json',
          ]),
        ).toBe(0);
        expect(JSON.parse(io.out())).toMatchObject({ namespace: 'serve', streams: [{ domain: 'billing' }] });
      } finally {
        vi.restoreAllMocks();
      }
    } finally {
      for (const s of services) await s.shutdown('test');
    }
  }, 60_000);

  it('cluster commands refuse missing options with exit status 2', async () => {
    const io = capture();
    try {
      expect(await runCli(['cluster', 'status'], {})).toBe(2);
      expect(await runCli(['cluster', 'import', '--nats', 'nats://127.0.0.1:1'], {})).toBe(2);
      expect(await runCli(['cluster', 'frob'], {})).toBe(2);
      expect(io.err()).toContain('cluster status needs --nats');
      expect(io.err()).toContain('cluster import needs --dir');
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('refuses cluster options without --nats; ring options apply in cluster mode too', () => {
    expect(() => parseServeConfig(['--node-id', 'a'], {})).toThrow(/--node-id needs --nats/);
    expect(() => parseServeConfig(['--nats', 'nats://127.0.0.1:4222'], {})).toThrow(/needs --node-id/);
    expect(
      parseServeConfig(['--nats', 'nats://127.0.0.1:4222', '--node-id', 'a', '--ring-bytes', '1048576'], {}),
    ).toMatchObject({ ringBytes: 1048576, cluster: { nodeId: 'a' } });
  });
});
