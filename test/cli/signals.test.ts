import { type ChildProcess, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * SIGTERM to the process a supervisor or a shell started: `npm start` and `npx ringstore serve`
 * run the server under npm (and a `sh -c`); the signal goes to npm only. The server must still stop
 * cleanly and leave neither a process, nor the port, nor the lock behind.
 *
 * The tests run npm in a scratch package that points at this checkout: `start` is this package's
 * own script, verbatim, with `build` a no-op there (npm test built dist/ already; rebuilding it
 * while other test files load it would race).
 */
const root = fileURLToPath(new URL('../../', import.meta.url));
const packageJson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
};

let scratch: string;
const children = new Set<ChildProcess>();

beforeAll(() => {
  if (!existsSync(join(root, 'dist/src/cli/main.js'))) throw new Error('dist/ is missing: run npm run build');
  scratch = mkdtempSync(join(tmpdir(), 'ringstore-signals-'));
  writeFileSync(
    join(scratch, 'package.json'),
    JSON.stringify({
      name: 'scratch',
      private: true,
      scripts: { build: 'true', start: packageJson.scripts.start },
    }),
  );
  symlinkSync(join(root, 'dist'), join(scratch, 'dist'));
  mkdirSync(join(scratch, 'node_modules/.bin'), { recursive: true });
  symlinkSync(root, join(scratch, 'node_modules/ringstore'));
  symlinkSync('../ringstore/bin/ringstore.js', join(scratch, 'node_modules/.bin/ringstore'));
});

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(scratch, { recursive: true, force: true });
});

interface Started {
  npm: ChildProcess;
  exited: Promise<number | null>;
  serverPid: number;
  port: number;
  log: string[];
}

/** Runs npm with `args` in the scratch package and resolves once the server logs that it listens. */
function startUnderNpm(args: readonly string[]): Promise<Started> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('npm_')));
  const npm = spawn('npm', [...args], { cwd: scratch, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(npm);
  const exited = new Promise<number | null>((resolve) =>
    npm.once('exit', (code) => {
      children.delete(npm);
      resolve(code);
    }),
  );
  const log: string[] = [];
  let stderr = '';
  npm.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  return new Promise((resolve, reject) => {
    void exited.then((code) =>
      reject(new Error(`npm exited with ${code} before the server listened: ${stderr}`)),
    );
    createInterface({ input: npm.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      log.push(line);
      let record: { msg?: string; url?: string; pid?: number };
      try {
        record = JSON.parse(line);
      } catch {
        return;
      }
      if (record.msg === 'ringstore listening' && record.url && record.pid) {
        resolve({ npm, exited, serverPid: record.pid, port: Number(new URL(record.url).port), log });
      }
    });
  });
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits (without a deadline of its own: the test timeout bounds it) until `pid` is gone. */
async function gone(pid: number): Promise<boolean> {
  while (running(pid)) await new Promise((resolve) => setTimeout(resolve, 50));
  return true;
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen({ port, host: '127.0.0.1' }, () => probe.close(() => resolve(true)));
  });
}

describe('SIGTERM to npm', () => {
  it('npm start execs the server: SIGTERM to npm drains, exits 0 and frees port and lock', async () => {
    expect(packageJson.scripts.start).toContain('exec node');
    const dir = join(scratch, 'data-start');
    const started = await startUnderNpm(['start', '--', '--dir', dir, '--port', '0']);
    started.npm.kill('SIGTERM');
    expect(await started.exited).toBe(0);
    expect(await gone(started.serverPid)).toBe(true);
    expect(await portIsFree(started.port)).toBe(true);
    expect(existsSync(join(dir, 'LOCK'))).toBe(false);
    expect(started.log.some((line) => line.includes('ringstore stopped: store closed and synced'))).toBe(
      true,
    );
  });

  it('npx ringstore serve: the server stops cleanly when npm (and its shell) die of SIGTERM', async () => {
    const dir = join(scratch, 'data-npx');
    const started = await startUnderNpm(['exec', '--', 'ringstore', 'serve', '--dir', dir, '--port', '0']);
    started.npm.kill('SIGTERM');
    // npm's own status is npm's business (143: its shell died of the signal); the server's is not.
    await started.exited;
    expect(await gone(started.serverPid)).toBe(true);
    expect(await portIsFree(started.port)).toBe(true);
    expect(existsSync(join(dir, 'LOCK'))).toBe(false);
  });
});
