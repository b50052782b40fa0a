import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';

/**
 * Three (or n) nats-servers with JetStream on file storage in a temporary directory, joined by
 * cluster routes, all on free loopback ports. For the cluster tests: start, wait for a JetStream
 * meta leader, kill -9 one server, stop them all and remove the directory. Used by the cluster
 * tests (test/support/nats-cluster.ts re-exports it) and the cluster bench case.
 */
export interface NatsServer {
  name: string;
  clientPort: number;
  url: string;
  process: ChildProcess | undefined;
}

export interface NatsCluster {
  servers: NatsServer[];
  /** Every server's client URL, comma separated (the form `--nats` takes). */
  urls: string[];
  dir: string;
  /** SIGKILLs one server and waits for it to exit. */
  kill(index: number): Promise<void>;
  /** Stops every server still running and removes the directory. */
  stop(): Promise<void>;
}

export const NATS_SERVER = process.env.NATS_SERVER ?? 'nats-server';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function config(
  name: string,
  clusterName: string,
  clientPort: number,
  routePort: number,
  routes: number[],
  dir: string,
): string {
  return [
    `server_name: ${name}`,
    `listen: 127.0.0.1:${clientPort}`,
    `jetstream { store_dir: "${join(dir, name)}" }`,
    'cluster {',
    `  name: ${clusterName}`,
    `  listen: 127.0.0.1:${routePort}`,
    `  routes: [${routes.map((p) => `nats-route://127.0.0.1:${p}`).join(', ')}]`,
    '}',
    '',
  ].join('\n');
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Waits until JetStream answers account info through `url` (a meta leader exists). */
export async function waitForMetaLeader(urls: string[], timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const nc = await connect({ servers: urls, timeout: 1000, reconnect: false });
      try {
        const jsm = await jetstreamManager(nc, { timeout: 1000 });
        await jsm.getAccountInfo();
        return;
      } finally {
        await nc.close();
      }
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new Error(`no JetStream meta leader within ${timeoutMs} ms: ${String(last)}`);
}

/**
 * Checks that every server of the cluster is running and answers on its own URL under its own
 * name. A port found free can be taken by another process before the server binds it (test files
 * start clusters side by side): that server then exits, and its URL may reach someone else's.
 */
async function checkOwnServers(servers: readonly NatsServer[]): Promise<void> {
  for (const server of servers) {
    const child = server.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`nats-server ${server.name} exited (its ports may have been taken)`);
    }
    const nc = await connect({ servers: server.url, timeout: 1000, reconnect: false });
    try {
      if (nc.info?.server_name !== server.name) {
        throw new Error(`${server.url} is served by ${nc.info?.server_name}, not by ${server.name}`);
      }
    } finally {
      await nc.close();
    }
  }
}

/** Starts the cluster; a start whose ports were taken meanwhile is stopped and tried again. */
export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  for (let attempt = 1; ; attempt++) {
    const cluster = await startOnce(size);
    try {
      await checkOwnServers(cluster.servers);
      return cluster;
    } catch (err) {
      await cluster.stop();
      if (attempt === 3) throw err;
    }
  }
}

async function startOnce(size: number): Promise<NatsCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'ringstore-nats-'));
  // Names unique to this cluster: a route or client that reaches another test's server is refused
  // (another cluster name) or found out (another server name).
  const tag = basename(dir).replace(/[^A-Za-z0-9]/g, '');
  const clientPorts: number[] = [];
  const routePorts: number[] = [];
  for (let i = 0; i < size; i++) {
    clientPorts.push(await freePort());
    routePorts.push(await freePort());
  }
  const servers: NatsServer[] = [];
  let spawnError: Error | undefined;
  for (let i = 0; i < size; i++) {
    const name = `${tag}-n${i + 1}`;
    const file = join(dir, `${name}.conf`);
    writeFileSync(
      file,
      config(name, `ringstore-test-${tag}`, clientPorts[i]!, routePorts[i]!, routePorts, dir),
    );
    const child = spawn(NATS_SERVER, ['-c', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.on('error', (err) => {
      spawnError ??= new Error(
        `cannot start ${NATS_SERVER} (install the Debian package nats-server): ${err.message}`,
      );
    });
    let log = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      log = (log + chunk.toString()).slice(-4000);
    });
    child.once('exit', (code, signal) => {
      if (code !== 0 && signal === null && process.env.NATS_LOG) process.stderr.write(log);
    });
    servers.push({
      name,
      clientPort: clientPorts[i]!,
      url: `nats://127.0.0.1:${clientPorts[i]}`,
      process: child,
    });
  }
  const urls = servers.map((s) => s.url);
  const cluster: NatsCluster = {
    servers,
    urls,
    dir,
    async kill(index: number) {
      const server = servers[index]!;
      const child = server.process;
      if (!child) return;
      child.kill('SIGKILL');
      await exited(child);
      server.process = undefined;
    },
    async stop() {
      await Promise.all(
        servers.map(async (server) => {
          const child = server.process;
          if (!child) return;
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited(child);
          clearTimeout(timer);
          server.process = undefined;
        }),
      );
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitForMetaLeader(urls);
  } catch (err) {
    await cluster.stop();
    throw spawnError ?? err;
  }
  return cluster;
}
