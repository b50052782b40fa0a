import { spawn, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { RING_STORE_BOUNDS, resolveRingStoreOptions } from '../../src/api/ring-store-options.js';
import { parseServeConfig } from '../../src/cli/config.js';
import { runCli } from '../../src/cli/main.js';
import { StorageEngine } from '../../src/storage/storage-engine.js';
import { capture } from '../support/capture.js';

/** `ringstore` answers like every other CLI: help, version, one-line errors, progress, no surprises. */
const root = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(root, 'bin/ringstore.js');
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;

let scratch: string;
let store: string;
beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'ringstore-answers-'));
  store = join(scratch, 'store');
  const engine = StorageEngine.open(store);
  for (let i = 1; i <= 20; i++)
    await engine.put('billing', 'invoice', BigInt(i), [{ type: 'Opened', data: `x${i}` }]);
  await engine.put('hr', 'person', 1n, [{ type: 'Hired' }]);
  await engine.close();
  mkdirSync(join(scratch, 'projects/notes'), { recursive: true });
  mkdirSync(join(scratch, 'projects/code'), { recursive: true });
  writeFileSync(join(scratch, 'projects/readme.txt'), 'not a store');
  mkdirSync(join(scratch, 'folders/alpha/deeper'), { recursive: true });
  writeFileSync(join(scratch, 'a-file'), 'x');
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

describe('help and version', () => {
  it('answers --help and -h at the top level and for every command, on stdout, exit 0', async () => {
    for (const args of [['--help'], ['-h'], ['help']]) {
      const io = capture();
      expect(await runCli(args)).toBe(0);
      expect(io.out()).toMatch(/^usage: ringstore <command>/);
      vi.restoreAllMocks();
    }
    for (const command of ['serve', 'verify', 'inspect', 'bench']) {
      for (const args of [
        [command, '--help'],
        [command, '-h'],
        ['help', command],
      ]) {
        const io = capture();
        expect(await runCli(args, {})).toBe(0);
        expect(io.out()).toMatch(new RegExp(`^usage: ringstore ${command}`));
        expect(io.err()).toBe('');
        vi.restoreAllMocks();
      }
    }
  });

  it('prints the package version for --version and -v, through the bin', () => {
    for (const flag of ['--version', '-v']) {
      const result = spawnSync(process.execPath, [BIN, flag], { encoding: 'utf8' });
      expect(result.status).toBe(0);
      expect(result.stdout).toBe(`ringstore ${version}\n`);
    }
  });
});

describe('errors: one line, no stack trace, non-zero exit, nothing created', () => {
  const cases: [string, (s: string) => string[], RegExp][] = [
    ['an unknown command', () => ['frob'], /unknown command "frob"/],
    ['an unknown top-level option', () => ['--frob'], /unknown option --frob/],
    ['verify without --dir', () => ['verify'], /verify needs --dir DIR/],
    ['--dir without a value', () => ['inspect', '--dir'], /--dir needs a value/],
    [
      'a flag whose value starts with a dash',
      () => ['serve', '--port', '-1'],
      /--port needs a value \(one that starts with a dash is written --port=-…\)/,
    ],
    [
      'an unknown verify option',
      (s) => ['verify', '--dir', join(s, 'store'), '--fast'],
      /unknown option --fast/,
    ],
    [
      'a stray argument',
      (s) => ['inspect', '--dir', join(s, 'store'), 'extra'],
      /unexpected argument "extra"/,
    ],
    [
      'a value for a boolean flag',
      (s) => ['verify', '--dir', join(s, 'store'), '--json=yes'],
      /--json takes no value/,
    ],
    ['a file as --dir (verify)', (s) => ['verify', '--dir', join(s, 'a-file')], /is a file, not a directory/],
    [
      'a file as --dir (serve)',
      (s) => ['serve', '--dir', join(s, 'a-file'), '--port', '0'],
      /is a file, not a directory/,
    ],
    ['a missing --dir (inspect)', (s) => ['inspect', '--dir', join(s, 'missing')], /does not exist/],
    ['a missing --dir (verify)', (s) => ['verify', '--dir', join(s, 'missing')], /does not exist/],
    ['a path through a file', (s) => ['verify', '--dir', join(s, 'a-file', 'x')], /inside a file/],
    [
      'a folder of other things (verify)',
      (s) => ['verify', '--dir', join(s, 'projects')],
      /not a ringstore data directory/,
    ],
    [
      'a folder of folders (inspect)',
      (s) => ['inspect', '--dir', join(s, 'folders')],
      /not a ringstore data directory \(folder alpha has no registry or index file\)/,
    ],
    [
      'a folder of other things (serve)',
      (s) => ['serve', '--dir', join(s, 'projects'), '--port', '0'],
      /not a ringstore data directory/,
    ],
    ['an unknown serve option', () => ['serve', '--frob'], /unknown option --frob/],
    [
      'a --nats that is not a URL (cluster status)',
      () => ['cluster', 'status', '--nats', 'not a url'],
      /--nats holds "not a url", which is not a nats-server URL/,
    ],
    [
      'a --nats that is not a URL (serve)',
      (s) => ['serve', '--dir', join(s, 'store'), '--nats', 'nats://ok:4222, not a url', '--node-id', 'a'],
      /--nats holds "not a url", which is not a nats-server URL/,
    ],
    [
      'a bare port as --nats (cluster status)',
      () => ['cluster', 'status', '--nats', '4222'],
      /--nats holds "4222", which is not a nats-server URL/,
    ],
    [
      'a --nats that is not a URL (cluster import)',
      (s) => ['cluster', 'import', '--dir', join(s, 'store'), '--nats', 'nats://ok:4222,http://[x'],
      /--nats holds "http:\/\/\[x", which is not a nats-server URL/,
    ],
    ['a bad serve number', () => ['serve', '--port', 'eighty'], /--port must be an integer/],
    [
      'a ring below the store minimum',
      () => ['serve', '--ring-bytes', '32768'],
      /--ring-bytes must be an integer from 65536/,
    ],
  ];

  for (const [name, args, message] of cases) {
    it(name, async () => {
      const before = JSON.stringify(listTree(scratch));
      const io = capture();
      const code = await runCli(args(scratch), {});
      expect(code).toBe(2);
      expect(io.out()).toBe('');
      expect(io.err()).toMatch(message);
      expect(io.err()).toMatch(/^ringstore[^\n]*: INVALID_OPTION: [^\n]+\n$/);
      expect(JSON.stringify(listTree(scratch))).toBe(before);
    });
  }

  it('answers a port in use as the bad option it is (exit 2), and closes the store it opened', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const { port } = busy.address() as AddressInfo;
    const dir = join(scratch, 'busy-port');
    try {
      const io = capture();
      const code = await runCli(['serve', '--dir', dir, '--port', String(port)], {});
      expect(code).toBe(2);
      expect(io.err()).toMatch(
        new RegExp(
          `^ringstore serve: INVALID_OPTION: cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use \\(EADDRINUSE\\)\n$`,
        ),
      );
      // The store it opened was closed: another open takes the directory at once.
      await (await StorageEngine.open(dir)).close();
    } finally {
      busy.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports an unexpected failure in one line too (a directory it may not read)', () => {
    const locked = join(scratch, 'unreadable');
    mkdirSync(locked, { mode: 0o000 });
    // root reads anything: run the CLI as nobody when we are root, else as ourselves.
    const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const result = spawnSync(process.execPath, [BIN, 'inspect', '--dir', locked], {
      encoding: 'utf8',
      ...asNobody,
    });
    rmSync(locked, { recursive: true, force: true });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(
      /^ringstore inspect: INVALID_OPTION: --dir \S+ cannot be read \(EACCES\)\n$/,
    );
  });
});

function listTree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

describe('one source for option bounds', () => {
  it('serve accepts a ring size, CRC thread count and backpressure wait exactly when RingStore.open does', () => {
    const ringSizes = [2 ** 12, 2 ** 15, 2 ** 16, 2 ** 16 + 1, 2 ** 20, 3 * 2 ** 20, 2 ** 30, 2 ** 31];
    for (const ringBytes of ringSizes) {
      const byStore = accepts(() => resolveRingStoreOptions({ dir: 'x', ringBytes }));
      const byCli = accepts(() => parseServeConfig(['--ring-bytes', String(ringBytes)], {}));
      expect({ ringBytes, byCli }).toEqual({ ringBytes, byCli: byStore });
    }
    const { crcThreads, backpressureTimeoutMs } = RING_STORE_BOUNDS;
    for (const threads of [crcThreads.min, crcThreads.max, crcThreads.max + 1]) {
      const byStore = accepts(() => resolveRingStoreOptions({ dir: 'x', crcThreads: threads }));
      expect(accepts(() => parseServeConfig(['--crc-threads', String(threads)], {}))).toBe(byStore);
    }
    for (const ms of [backpressureTimeoutMs.min, backpressureTimeoutMs.max, backpressureTimeoutMs.max + 1]) {
      const byStore = accepts(() => resolveRingStoreOptions({ dir: 'x', backpressureTimeoutMs: ms }));
      expect(accepts(() => parseServeConfig(['--backpressure-timeout-ms', String(ms)], {}))).toBe(byStore);
    }
  });
});

function accepts(run: () => unknown): boolean {
  try {
    run();
    return true;
  } catch (err) {
    expect(err).toMatchObject({ code: 'INVALID_OPTION' });
    return false;
  }
}

describe('progress on stderr', () => {
  for (const command of ['verify', 'inspect']) {
    it(`${command} ends its progress with a 100 % line when stderr is a pipe, the result on stdout`, () => {
      const result = spawnSync(process.execPath, [BIN, command, '--dir', store, '--json'], {
        encoding: 'utf8',
      });
      expect(result.status).toBe(0);
      const lines = result.stderr.trimEnd().split('\n');
      expect(lines.at(-1)).toMatch(new RegExp(`^${command} \\[#+\\] 100% 2 domains, 21 events`));
      expect(lines.every((line) => line.startsWith(`${command} [`))).toBe(true);
      expect(JSON.parse(result.stdout)).toBeTruthy();
    });
  }
});

describe('serve logs what recovery cut at open', () => {
  it('one warn line per recovery action, before it listens', async () => {
    const dir = join(scratch, 'torn');
    const engine = StorageEngine.open(dir);
    await engine.put('billing', 'invoice', 1n, [{ type: 'Opened', data: 'x' }]);
    await engine.close();
    // A partial record after the last one: a torn tail, which recovery cuts.
    appendFileSync(join(dir, 'billing/index'), Buffer.alloc(10, 7));
    const child = spawn(process.execPath, [BIN, 'serve', '--dir', dir, '--port', '0'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const records: { msg?: string; level?: number; recovery?: { file: string; action: string } }[] = [];
    try {
      await new Promise<void>((resolve, reject) => {
        void exited.then((code) => reject(new Error(`serve exited with ${code}`)));
        createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
          const record = JSON.parse(line) as (typeof records)[number];
          records.push(record);
          if (record.msg === 'ringstore listening') resolve();
        });
      });
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    const cut = records.filter((r) => r.msg?.startsWith('recovery at open:'));
    expect(cut).toEqual([
      expect.objectContaining({
        level: 40,
        recovery: expect.objectContaining({ file: 'billing/index', action: 'truncated' }),
      }),
    ]);
    expect(cut[0]?.msg).toMatch(/10 bytes moved aside to billing\/index\.cut-\d+$/);
    expect(records.indexOf(cut[0] as (typeof records)[number])).toBeLessThan(
      records.findIndex((r) => r.msg === 'ringstore listening'),
    );
    expect(existsSync(join(dir, 'LOCK'))).toBe(false);
  });
});
