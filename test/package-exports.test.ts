import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * `ringstore`, `ringstore/client` and `ringstore/fastify` imported by package name, as an
 * application does: a scratch project whose node_modules/ringstore links to this (built) checkout.
 */
const root = fileURLToPath(new URL('../', import.meta.url));
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  exports: Record<string, string | { types: string; default: string }>;
};
const scratch = mkdtempSync(join(tmpdir(), 'ringstore-exports-'));
beforeAll(() => {
  mkdirSync(join(scratch, 'node_modules'));
  symlinkSync(root, join(scratch, 'node_modules/ringstore'));
  symlinkSync(join(root, 'node_modules/fastify'), join(scratch, 'node_modules/fastify'));
  mkdirSync(join(scratch, 'node_modules/@event-driven-io'));
  symlinkSync(
    join(root, 'node_modules/@event-driven-io/emmett'),
    join(scratch, 'node_modules/@event-driven-io/emmett'),
  );
  writeFileSync(
    join(scratch, 'package.json'),
    JSON.stringify({ name: 'app', type: 'module', private: true }),
  );
  writeFileSync(join(scratch, 'app.js'), APP);
  writeFileSync(join(scratch, 'emmett-app.js'), EMMETT_APP);
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const APP = `
import Fastify from 'fastify';
import { RingStore } from 'ringstore';
import { HttpEventStore } from 'ringstore/client';
import { ringstore, TokenAuthority } from 'ringstore/fastify';
import { createHash } from 'node:crypto';

const store = await RingStore.open({ dir: process.argv[2], durability: 'none' });
const app = Fastify();
app.get('/', async () => 'host');
const sha256 = createHash('sha256').update('secret').digest('hex');
const tokens = new TokenAuthority([{ name: 'app', sha256, scopes: { '*': ['append', 'read'] } }]);
await app.register(ringstore, { store, prefix: '/es', tokens });
const address = await app.listen({ host: '127.0.0.1', port: 0 });
const client = await HttpEventStore.connect(address + '/es', { token: 'secret' });
const id = client.newKey();
await client.put('shop', 'cart', id, [{ type: 'Added', data: '{"n":1}' }]);
const { version, events } = await client.get('shop', 'cart', id);
let refused;
try {
  await (await HttpEventStore.connect(address + '/es', { token: 'wrong' })).get('shop', 'cart', id);
} catch (err) {
  refused = err.code;
}
await client.close();
await app.close();
await store.close();
process.stdout.write(JSON.stringify({ version, types: events.map((e) => e.type), refused }));
`;

const EMMETT_APP = `
import { CommandHandler } from '@event-driven-io/emmett';
import { MemoryEventStore } from 'ringstore';
import { getRingStoreEventStore } from 'ringstore/emmett';

const eventStore = getRingStoreEventStore(new MemoryEventStore());
const handle = CommandHandler({ initialState: () => 0, evolve: (n, e) => n + e.data.by });
await handle(eventStore, 'counter-1', () => ({ type: 'Added', data: { by: 2 } }));
const { state, currentStreamVersion } = await eventStore.aggregateStream('counter-1', {
  initialState: () => 0,
  evolve: (n, e) => n + e.data.by,
});
process.stdout.write(JSON.stringify({ state, version: String(currentStreamVersion) }));
`;

/** Every module a built entry point loads, following its relative imports. */
function importGraph(entry: string): { files: string[]; packages: Set<string> } {
  const files: string[] = [];
  const packages = new Set<string>();
  const pending = [join(root, entry)];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (files.includes(file)) continue;
    files.push(file);
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(/^\s*(?:import|export)\b(?:[^'";]*?\bfrom)?\s*['"]([^'"]+)['"]/gm)) {
      const target = match[1]!;
      if (target.startsWith('.')) pending.push(join(file, '..', target));
      else packages.add(target);
    }
  }
  return { files, packages };
}

describe('package exports', () => {
  it('every export points at a built file and its types', () => {
    for (const [subpath, target] of Object.entries(manifest.exports)) {
      const files = typeof target === 'string' ? [target] : [target.default, target.types];
      for (const file of files) expect(existsSync(join(root, file)), `${subpath} → ${file}`).toBe(true);
    }
    expect(Object.keys(manifest.exports)).toEqual(
      expect.arrayContaining(['.', './client', './fastify', './emmett']),
    );
  });

  it('an application imports ringstore/client and ringstore/fastify by name and they work together', () => {
    const result = spawnSync(process.execPath, ['app.js', join(scratch, 'data')], {
      cwd: scratch,
      encoding: 'utf8',
    });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ version: 1, types: ['Added'], refused: 'UNAUTHORIZED' });
  });

  it('ringstore/emmett runs emmett code on a ringstore store', () => {
    const result = spawnSync(process.execPath, ['emmett-app.js'], { cwd: scratch, encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ state: 2, version: '1' });
  });

  it('emmett is an optional peer: only ringstore/emmett loads it', () => {
    for (const entry of ['dist/src/index.js', 'dist/src/client.js', 'dist/src/fastify.js']) {
      const { files, packages } = importGraph(entry);
      expect(files.length, entry).toBeGreaterThan(3);
      expect(
        [...packages].filter((name) => name.startsWith('@event-driven-io/')),
        entry,
      ).toEqual([]);
    }
    expect(importGraph('dist/src/emmett.js').packages).toContain('@event-driven-io/emmett');
  });

  it('a subpath that is not exported stays private', () => {
    const result = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', "await import('ringstore/dist/src/api/http/server.js')"],
      {
        cwd: scratch,
        encoding: 'utf8',
      },
    );
    expect(result.stderr).toContain('ERR_PACKAGE_PATH_NOT_EXPORTED');
  });
});
