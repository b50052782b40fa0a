import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { afterAll, describe, expect, it } from 'vitest';
import { readClusterStatus } from '../../src/api/cluster/cluster-status.js';
import { natsConnectOptions, natsServers } from '../../src/pipeline/cluster/nats-servers.js';
import { NATS_SERVER } from '../support/nats-cluster.js';

describe('natsServers', () => {
  it('takes the URLs and host:port forms the NATS client connects to, trimmed', () => {
    const accepted = [
      'nats://a.example:4222',
      'nats-1:4222',
      'tls://nats.example.com:4443',
      'nats://[::1]:4222',
      '[::1]:4222',
      '::1',
      'nats://u:p@nats:4222',
      'token@nats_2:4222',
      '127.0.0.1',
    ];
    for (const server of accepted) expect(natsServers(` ${server} `, 'servers')).toEqual([server]);
    expect(natsServers('a:1, b:2', 'servers')).toEqual(['a:1', 'b:2']);
  });

  it('refuses anything else with INVALID_OPTION naming the option, never echoing a password', () => {
    const refused = [
      'not a url',
      '4222',
      'nats://4222',
      '123:4222',
      'ws://a:4222',
      'http://a:80',
      'nats://a:4222/path',
      'nats://u:secret@',
      '',
    ];
    for (const server of refused) {
      let caught: unknown;
      try {
        natsServers(server, 'servers', '--nats');
      } catch (err) {
        caught = err;
      }
      expect(caught, server).toMatchObject({ code: 'INVALID_OPTION', details: { option: 'servers' } });
      expect(String((caught as Error).message)).toMatch(/^--nats /);
      expect(String((caught as Error).message)).not.toContain('secret');
    }
    expect(() => natsServers(['nats://u:p@a:1', 'nats://v:q@b:1'], 'servers')).toThrow(
      /different credentials/,
    );
  });

  it('takes credentials out of the URLs into the client options', () => {
    expect(natsConnectOptions(['nats://u:p%40ss@nats:4222', 'u:p%40ss@b:4222'])).toEqual({
      servers: ['nats://nats:4222', 'b:4222'],
      user: 'u',
      pass: 'p@ss',
    });
    expect(natsConnectOptions(['nats://s3cret@a:4222'])).toEqual({
      servers: ['nats://a:4222'],
      token: 's3cret',
    });
    expect(natsConnectOptions(['a:4222'])).toEqual({ servers: ['a:4222'] });
  });
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Connects with `url`'s credentials taken out as ringstore takes them; undefined while refused. */
async function serverNameAt(url: string): Promise<string | undefined> {
  try {
    const nc = await connect({ ...natsConnectOptions([url]), timeout: 1000, reconnect: false });
    const name = nc.info?.server_name;
    await nc.close();
    return name;
  } catch (err) {
    if (/refused/i.test(String(err))) return undefined;
    throw err;
  }
}

describe('a nats-server that requires a user and password', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringstore-nats-auth-'));
  let child: ChildProcess | undefined;
  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child?.once('exit', resolve));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Starts the server under a name of its own and returns its URL with credentials. Other test files
   * start servers side by side: a port found free may be taken before this one binds it, so a start
   * whose server exited, or whose URL reaches another server, is tried again on another port.
   */
  async function start(): Promise<number> {
    const name = `ringstore-auth-${process.pid}`;
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const started = spawn(
        NATS_SERVER,
        [
          '-a',
          '127.0.0.1',
          '-p',
          String(port),
          '-n',
          name,
          '-js',
          '-sd',
          dir,
          '--user',
          'u',
          '--pass',
          'p w',
        ],
        { stdio: 'ignore' },
      );
      child = started;
      const deadline = Date.now() + 10_000;
      let found: string | undefined;
      while (started.exitCode === null && Date.now() < deadline) {
        found = await serverNameAt(`nats://u:p%20w@127.0.0.1:${port}`);
        if (found !== undefined) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      if (found === name) return port;
      started.kill('SIGTERM');
      if (attempt === 3)
        throw new Error(`nats-server ${name} did not start on its own port (${found ?? 'exited'})`);
    }
  }

  it('is reached with the credentials written in its URL, the host without a dot included', async () => {
    const port = await start();
    // The client used to drop the credentials (Authorization Violation) and, with them, take
    // `localhost` for an IPv6 address (Invalid URL).
    const status = await readClusterStatus([`nats://u:p%20w@localhost:${port}`]);
    expect(status.namespace).toBe('ringstore');
    await expect(readClusterStatus([`nats://u:wrong@localhost:${port}`])).rejects.toMatchObject({
      code: 'CLUSTER_UNAVAILABLE',
    });
  }, 40_000);
});
