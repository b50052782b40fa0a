import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The Dockerfile's entry command, run for real as PID 1 of its own pid namespace
 * (`unshare -fp --mount-proc`, what a container runtime does, without the image): it serves, a
 * SIGTERM stops it cleanly (PID 1 ignores signals it has no handler for), and after a SIGKILL it
 * starts again on the same directory although the new process has the dead one's pid, 1, and the
 * lock it left names pid 1.
 */
const root = fileURLToPath(new URL('../../', import.meta.url));
const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');

/** The instruction's arguments, continuation lines joined. */
function instruction(name: string): string | undefined {
  const joined = dockerfile.replace(/\\\n/g, ' ');
  const lines = joined.split('\n').filter((line) => line.startsWith(`${name} `));
  return lines
    .at(-1)
    ?.slice(name.length + 1)
    .trim();
}

function execForm(text: string | undefined): string[] {
  if (text === undefined) throw new Error('missing Dockerfile instruction');
  const parsed = JSON.parse(text) as unknown;
  if (!Array.isArray(parsed)) throw new Error(`not an exec form: ${text}`);
  return parsed.map(String);
}

/** ENV of the final stage (key=value pairs). */
function imageEnv(): Record<string, string> {
  const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  const env: Record<string, string> = {};
  for (const line of finalStage.split('\n').filter((l) => l.startsWith('ENV '))) {
    for (const pair of line.slice(4).trim().split(/\s+/)) {
      const [key, value] = pair.split('=');
      if (key && value !== undefined) env[key] = value;
    }
  }
  return env;
}

/** The image's command on this machine: /app is this checkout, node is this Node. */
function onThisMachine(argv: readonly string[]): string[] {
  return argv.map((arg, index) => {
    if (index === 0 && arg === 'node') return process.execPath;
    return arg.startsWith('/app/') ? join(root, arg.slice('/app/'.length)) : arg;
  });
}

const entry = [...execForm(instruction('ENTRYPOINT')), ...execForm(instruction('CMD'))];
const healthcheck = execForm(instruction('HEALTHCHECK')?.replace(/^.*?CMD\s+/, ''));

function unshareProblem(): string | undefined {
  const probe = spawnSync('unshare', ['-fp', '--mount-proc', 'sh', '-c', 'echo $$'], { encoding: 'utf8' });
  if (probe.error) return `unshare is not available: ${probe.error.message}`;
  if (probe.status !== 0) return `unshare -fp --mount-proc is not permitted here: ${probe.stderr.trim()}`;
  if (probe.stdout.trim() !== '1')
    return `unshare did not start a pid namespace (pid ${probe.stdout.trim()})`;
  return undefined;
}

const problem = unshareProblem();
if (problem !== undefined) console.warn(`skipping the PID 1 container test: ${problem}`);

const dirs: string[] = [];
const children = new Set<ChildProcess>();
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface Container {
  unshare: ChildProcess;
  exited: Promise<number | null>;
  /** The server's pid as this (the host) namespace sees it; it sees itself as 1. */
  hostPid: number;
  pidInside: number;
  url: string;
}

function start(dir: string): Promise<Container> {
  const env = {
    ...process.env,
    ...imageEnv(),
    RINGSTORE_DIR: dir,
    RINGSTORE_PORT: '0',
    RINGSTORE_INSECURE: '1',
  };
  const unshare = spawn('unshare', ['-fp', '--mount-proc', ...onThisMachine(entry)], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(unshare);
  const exited = new Promise<number | null>((resolve) =>
    unshare.once('exit', (code) => {
      children.delete(unshare);
      resolve(code);
    }),
  );
  let stderr = '';
  unshare.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  return new Promise((resolve, reject) => {
    void exited.then((code) =>
      reject(new Error(`the server exited with ${code} before listening: ${stderr}`)),
    );
    createInterface({ input: unshare.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      let record: { msg?: string; url?: string; pid?: number };
      try {
        record = JSON.parse(line);
      } catch {
        return;
      }
      if (record.msg !== 'ringstore listening' || !record.url || record.pid === undefined) return;
      // unshare -f forks the namespace's init: the server is unshare's only child.
      const children = readFileSync(`/proc/${unshare.pid}/task/${unshare.pid}/children`, 'utf8').trim();
      resolve({
        unshare,
        exited,
        hostPid: Number(children.split(' ')[0]),
        pidInside: record.pid,
        url: record.url.replace('0.0.0.0', '127.0.0.1'),
      });
    });
  });
}

async function append(url: string, id: string, expectedVersion: number): Promise<number> {
  const response = await fetch(`${url}/v1/domains/shop/aggregates/cart/${id}/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ events: [{ type: 'Added', data: { n: expectedVersion } }], expectedVersion }),
  });
  return response.status;
}

async function version(url: string, id: string): Promise<number> {
  const response = await fetch(`${url}/v1/domains/shop/aggregates/cart/${id}/events`);
  return ((await response.json()) as { version: number }).version;
}

function runHealthcheck(url: string): number | null {
  const [command, ...args] = onThisMachine(healthcheck);
  const result = spawnSync(command as string, args, {
    env: { ...process.env, ...imageEnv(), RINGSTORE_PORT: new URL(url).port },
  });
  return result.status;
}

describe.skipIf(problem !== undefined)('the Dockerfile entry command as PID 1', () => {
  it('serves, passes its healthcheck, stops on SIGTERM, and restarts after SIGKILL', async () => {
    expect(entry).toContain('serve');
    const dir = mkdtempSync(join(tmpdir(), 'ringstore-pid1-'));
    dirs.push(dir);

    const first = await start(dir);
    expect(first.pidInside).toBe(1);
    expect(runHealthcheck(first.url)).toBe(0);
    expect(await append(first.url, '7', 0)).toBe(201);
    process.kill(first.hostPid, 'SIGTERM');
    expect(await first.exited).toBe(0);
    expect(existsSync(join(dir, 'LOCK'))).toBe(false);

    const second = await start(dir);
    expect(second.pidInside).toBe(1);
    expect(await append(second.url, '7', 1)).toBe(201);
    process.kill(second.hostPid, 'SIGKILL');
    await second.exited;
    expect(readFileSync(join(dir, 'LOCK'), 'utf8')).toMatch(/^1 /);

    const third = await start(dir);
    expect(third.pidInside).toBe(1);
    expect(runHealthcheck(third.url)).toBe(0);
    expect(await version(third.url, '7')).toBe(2);
    process.kill(third.hostPid, 'SIGTERM');
    expect(await third.exited).toBe(0);
  });
});

function systemdAnalyzeProblem(): string | undefined {
  const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  if (probe.error) return `systemd-analyze is not available: ${probe.error.message}`;
  return probe.status === 0 ? undefined : `systemd-analyze --version failed: ${probe.stderr.trim()}`;
}

const systemdProblem = systemdAnalyzeProblem();
if (systemdProblem !== undefined) console.warn(`skipping the systemd unit check: ${systemdProblem}`);

describe.skipIf(systemdProblem !== undefined)('the systemd unit in docs/OPERATIONS.md', () => {
  it('passes systemd-analyze verify and runs `ringstore serve` with a SIGTERM stop', () => {
    const operations = readFileSync(join(root, 'docs/OPERATIONS.md'), 'utf8');
    const unit = /```ini\n([\s\S]*?)```/.exec(operations)?.[1];
    expect(unit).toContain('[Service]');
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/node \/opt\/ringstore\/bin\/ringstore\.js serve$/m);
    expect(unit).toMatch(/^KillSignal=SIGTERM$/m);
    const dir = mkdtempSync(join(tmpdir(), 'ringstore-unit-'));
    dirs.push(dir);
    const path = join(dir, 'ringstore.service');
    // The unit names /usr/bin/node; this machine's Node may live elsewhere.
    writeFileSync(path, (unit as string).replace('/usr/bin/node', process.execPath));
    const result = spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});
