import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

  it('is reached with the credentials written in its URL, the host without a dot included', async () => {
    const port = await freePort();
    child = spawn(
      NATS_SERVER,
      ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir, '--user', 'u', '--pass', 'p w'],
      {
        stdio: 'ignore',
      },
    );
    // The client used to drop the credentials (Authorization Violation) and, with them, take
    // `localhost` for an IPv6 address (Invalid URL).
    let status: Awaited<ReturnType<typeof readClusterStatus>> | undefined;
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        status = await readClusterStatus([`nats://u:p%20w@localhost:${port}`]);
        break;
      } catch (err) {
        if (Date.now() > deadline || !/refused/i.test(String(err))) throw err;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    expect(status?.namespace).toBe('ringstore');
    await expect(readClusterStatus([`nats://u:wrong@localhost:${port}`])).rejects.toMatchObject({
      code: 'CLUSTER_UNAVAILABLE',
    });
  }, 30_000);
});
