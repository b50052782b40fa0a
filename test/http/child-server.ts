import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The compiled CLI: child-process tests run `ringstore serve` as users do (npm test builds first). */
export const CLI_SCRIPT = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));

export interface ServeChild {
  child: ChildProcess;
  url: string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
}

const live = new Set<ChildProcess>();

/** Kills every child still running (afterAll/afterEach of the tests that spawn them): no leaks on failure. */
export function killAllServeChildren(): void {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}

/** Starts `ringstore serve --port 0` in a child process and resolves once it listens. */
export function spawnServe(dir: string, args: readonly string[] = []): Promise<ServeChild> {
  if (!existsSync(CLI_SCRIPT)) throw new Error(`${CLI_SCRIPT} is missing: run npm run build`);
  const child = spawn(process.execPath, [CLI_SCRIPT, 'serve', '--dir', dir, '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      live.delete(child);
      resolve(code);
    }),
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve did not start in time: ${stderr}`));
    }, 30_000);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code} before listening: ${stderr}`));
    });
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      let record: { msg?: string; url?: string };
      try {
        record = JSON.parse(line);
      } catch {
        return;
      }
      if (record.msg === 'ringstore listening' && record.url) {
        clearTimeout(timer);
        resolve({ child, url: record.url, exited });
      }
    });
  });
}
