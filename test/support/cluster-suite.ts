import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { type NatsCluster, startNatsCluster } from './nats-cluster.js';

export interface ClusterSuite {
  /** Three nats-servers with routes, started before the file's tests (set in beforeAll). */
  cluster: NatsCluster;
  /** A new temporary directory, removed after the file's tests. */
  tempDir(): string;
}

/**
 * The shared setup of a cluster test file: three nats-servers for the whole file and temporary
 * directories, both removed after it. Call at the top level of the file.
 */
export function clusterSuite(prefix: string): ClusterSuite {
  const dirs: string[] = [];
  const suite: ClusterSuite = {
    cluster: undefined as unknown as NatsCluster,
    tempDir() {
      const dir = mkdtempSync(join(tmpdir(), `ringstore-${prefix}-`));
      dirs.push(dir);
      return dir;
    },
  };
  beforeAll(async () => {
    suite.cluster = await startNatsCluster(3);
  });
  afterAll(async () => {
    await suite.cluster?.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  return suite;
}
