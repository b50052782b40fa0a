import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { StorageEngine } from '../../src/storage/storage-engine.js';
import { verifyStore } from '../../src/storage/verify.js';
import { CLI_SCRIPT, killAllServeChildren, spawnServe } from '../http/child-server.js';
import { digestTree, readAll } from '../support/store-content.js';

const root = mkdtempSync(join(tmpdir(), 'ringstore-ops-cli-'));
afterEach(() => killAllServeChildren());
afterAll(() => rmSync(root, { recursive: true, force: true }));

function cli(args: string[]) {
  const run = spawnSync(process.execPath, [CLI_SCRIPT, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

async function fillStore(dir: string, batches: number): Promise<void> {
  const engine = StorageEngine.open(dir, { durability: 'write' });
  try {
    for (let i = 0; i < batches; i += 1000) {
      const puts = [];
      for (let j = i; j < Math.min(batches, i + 1000); j++) {
        const domain = j % 3 === 0 ? 'crm' : 'shop';
        const type = j % 2 === 0 ? 'order' : 'cart';
        puts.push(
          engine.put(domain, type, BigInt(1 + (j % 500)), [
            { type: 'Happened', data: new Uint8Array(120).fill(j & 255) },
          ]),
        );
      }
      await Promise.all(puts);
    }
  } finally {
    await engine.close();
  }
}

describe('ringstore backup and repartition (CLI)', () => {
  it('backup reaches a running server through its admin socket; the HTTP route needs the admin scope', async () => {
    const dir = join(root, 'served');
    const server = await spawnServe(dir);
    try {
      for (let i = 1; i <= 20; i++) {
        const answer = await fetch(`${server.url}/v1/domains/billing/aggregates/invoice/${i}/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ events: [{ type: 'Opened', data: { n: i } }] }),
        });
        expect(answer.status).toBe(201);
      }
      const to = join(root, 'served-backup');
      const run = cli(['backup', '--dir', dir, '--to', to]);
      expect(run.stderr).toContain('backup [');
      expect(run.status, run.stderr).toBe(0);
      expect(run.stdout).toContain('taken by the server');
      expect(run.stdout).toContain('20 events');
      expect(verifyStore(to).problems).toEqual([]);
      const again = cli(['backup', '--dir', dir, '--to', to]);
      expect(again.status).toBe(1);
      expect(again.stderr).toContain('TARGET_EXISTS');
      // The socket's body is JSON as everywhere: bytes that are not UTF-8 are INVALID_JSON.
      const refused = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const post = httpRequest(
          { socketPath: join(dir, '.ringstore-admin.sock'), method: 'POST', path: '/backup' },
          (response) => {
            let text = '';
            response.setEncoding('utf8');
            response.on('data', (chunk: string) => {
              text += chunk;
            });
            response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
          },
        );
        post.on('error', reject);
        post.end(Buffer.concat([Buffer.from('{"to":"/tmp/x'), Buffer.from([0xff]), Buffer.from('"}')]));
      });
      expect(refused.status).toBe(400);
      expect(JSON.parse(refused.text).error).toMatchObject({
        code: 'INVALID_JSON',
        message: expect.stringMatching(/UTF-8/),
      });

      const viaHttp = join(root, 'http-backup');
      const answer = await fetch(`${server.url}/v1/admin/backup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ to: viaHttp }),
      });
      expect(answer.status).toBe(200);
      const lines = (await answer.text())
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines.at(-1).backup.events).toBe(20);
      expect(verifyStore(viaHttp).problems).toEqual([]);
      const relative = await fetch(`${server.url}/v1/admin/backup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ to: 'relative/path' }),
      });
      expect(relative.status).toBe(400);
      // A target under a file: the answer's error line names the option, and no system message.
      const plainFile = join(root, 'plain-file');
      writeFileSync(plainFile, 'x');
      const underFile = await fetch(`${server.url}/v1/admin/backup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ to: join(plainFile, 'backup') }),
      });
      const failed = (await underFile.text())
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(failed.at(-1).error).toMatchObject({ code: 'INVALID_OPTION', option: 'to' });
      expect(JSON.stringify(failed.at(-1).error)).not.toContain('lstat');
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    expect(existsSync(join(dir, '.ringstore-admin.sock'))).toBe(false);

    const tokens = join(root, 'tokens.json');
    const sha = (token: string) => createHash('sha256').update(token).digest('hex');
    writeFileSync(
      tokens,
      JSON.stringify([
        { name: 'reader', sha256: sha('r'), scopes: { '*': ['read', 'append'] } },
        { name: 'ops', sha256: sha('o'), scopes: { '*': ['admin'] } },
      ]),
    );
    const guarded = await spawnServe(dir, ['--tokens', tokens]);
    try {
      const ask = (token: string, to: string) =>
        fetch(`${guarded.url}/v1/admin/backup`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ to }),
        });
      expect((await ask('r', join(root, 'denied'))).status).toBe(403);
      expect(existsSync(join(root, 'denied'))).toBe(false);
      const allowed = await ask('o', join(root, 'allowed'));
      expect(allowed.status).toBe(200);
      expect(
        (await allowed.text())
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l))
          .at(-1).backup.events,
      ).toBe(20);
    } finally {
      guarded.child.kill('SIGTERM');
      await guarded.exited;
    }
  }, 60_000);

  it('backup of a store nobody holds; repartition with --dry-run, a bad plan, and for real', async () => {
    const dir = join(root, 'offline');
    await fillStore(dir, 300);
    const backup = cli(['backup', '--dir', dir, '--to', join(root, 'offline-backup'), '--json']);
    expect(backup.status, backup.stderr).toBe(0);
    expect(JSON.parse(backup.stdout)).toMatchObject({ takenBy: 'this command', events: 300, domains: 2 });
    // Held by a process without an admin socket (an embedding application): refused, with the way out.
    const holder = StorageEngine.open(dir);
    try {
      const held = cli(['backup', '--dir', dir, '--to', join(root, 'held-backup')]);
      expect(held.status).toBe(1);
      expect(held.stderr).toContain('STORE_LOCKED');
      expect(held.stderr).toContain('store.backup(to)');
      expect(existsSync(join(root, 'held-backup'))).toBe(false);
    } finally {
      await holder.close();
    }

    const plan = join(root, 'plan.json');
    writeFileSync(
      plan,
      JSON.stringify({
        renameDomains: { crm: 'people' },
        drop: { aggregateTypes: [{ domain: 'shop', aggregateType: 'cart' }] },
      }),
    );
    const to = join(root, 'offline-split');
    const dry = cli(['repartition', '--from', dir, '--to', to, '--plan', plan, '--dry-run']);
    expect(dry.status, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('dry run');
    expect(dry.stdout).toContain('people ← crm: 100 events');
    expect(existsSync(to)).toBe(false);

    const badPlan = join(root, 'bad-plan.json');
    writeFileSync(badPlan, JSON.stringify({ drop: { domains: ['nowhere'] } }));
    const bad = cli(['repartition', '--from', dir, '--to', to, '--plan', badPlan]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('INVALID_PLAN');
    expect(existsSync(to)).toBe(false);

    const real = cli(['repartition', '--from', dir, '--to', to, '--plan', plan, '--json']);
    expect(real.status, real.stderr).toBe(0);
    const report = JSON.parse(real.stdout);
    expect(report.targets.map((t: { domain: string; events: number }) => [t.domain, t.events])).toEqual([
      ['people', 100],
      ['shop', 100],
    ]);
    const target = StorageEngine.open(to);
    try {
      expect(target.domains()).toEqual(['people', 'shop']);
      const people = await readAll(target, 'people');
      expect(people.map((e) => e.position)).toEqual([...Array(100).keys()]);
    } finally {
      await target.close();
    }
  }, 60_000);

  it('SIGKILL in the middle of a backup leaves a target that every open refuses', async () => {
    const dir = join(root, 'kill-backup-src');
    const engine = StorageEngine.open(dir, { durability: 'write' });
    try {
      const puts = [];
      for (let i = 0; i < 1_200; i++) {
        puts.push(
          engine.put('media', 'blob', BigInt(1 + i), [
            { type: 'Stored', data: new Uint8Array(60_000).fill(i & 255) },
          ]),
        );
      }
      await Promise.all(puts);
    } finally {
      await engine.close();
    }
    const to = join(root, 'kill-backup-dst');
    const child = spawn(process.execPath, [CLI_SCRIPT, 'backup', '--dir', dir, '--to', to, '--no-link'], {
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let running = true;
    void exited.then(() => {
      running = false;
    });
    const copying = () => existsSync(join(to, 'INCOMPLETE')) && existsSync(join(to, 'media', 'blob.0'));
    while (running && !copying()) await new Promise((resolve) => setTimeout(resolve, 1));
    expect(running, 'the backup finished before it could be killed: make the store larger').toBe(true);
    child.kill('SIGKILL');
    expect(await exited).toBe(null);
    expect(() => StorageEngine.open(to)).toThrow(expect.objectContaining({ code: 'STORE_INCOMPLETE' }));
    expect(() => verifyStore(to)).toThrow(expect.objectContaining({ code: 'STORE_INCOMPLETE' }));
  }, 60_000);

  it('SIGKILL in the middle of a repartition leaves the source byte-identical and the target refused', async () => {
    const from = join(root, 'kill-src');
    await fillStore(from, 12_000);
    const before = digestTree(from);
    const plan = join(root, 'kill-plan.json');
    writeFileSync(
      plan,
      JSON.stringify({ moveAggregateTypes: [{ domain: 'shop', aggregateType: 'cart', to: 'carts' }] }),
    );
    const to = join(root, 'kill-dst');
    const child = spawn(
      process.execPath,
      [CLI_SCRIPT, 'repartition', '--from', from, '--to', to, '--plan', plan],
      {
        stdio: 'ignore',
      },
    );
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let running = true;
    void exited.then(() => {
      running = false;
    });
    // Kill once the target has its marker and data is being written into it.
    const writing = () =>
      existsSync(join(to, 'INCOMPLETE')) &&
      existsSync(join(to, 'carts', 'index')) &&
      statSync(join(to, 'carts', 'index')).size > 0;
    while (running && !writing()) await new Promise((resolve) => setTimeout(resolve, 2));
    expect(running, 'the repartition finished before it could be killed: make the source larger').toBe(true);
    child.kill('SIGKILL');
    expect(await exited).toBe(null);

    expect(digestTree(from)).toEqual(before);
    expect(() => StorageEngine.open(to)).toThrow(expect.objectContaining({ code: 'STORE_INCOMPLETE' }));
    const verify = cli(['verify', '--dir', to]);
    expect(verify.status).toBe(1);
    expect(verify.stderr).toContain('STORE_INCOMPLETE');
    // The killed tool's LOCK is stale: the source opens again as it was.
    const source = StorageEngine.open(from);
    try {
      expect((await readAll(source, 'shop')).length).toBe(8_000);
    } finally {
      await source.close();
    }
  }, 60_000);
});
