import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * `ringstore bench [--http] [args…]`: runs the compiled benchmark suite (dist/bench/run.js, or
 * dist/bench/http/run.js with --http) in a child process with the same Node, passing the remaining
 * arguments through, and returns its exit code.
 */
export function runBench(args: readonly string[]): Promise<number> {
  const http = args.includes('--http');
  const rest = args.filter((a) => a !== '--http');
  const script = fileURLToPath(
    new URL(http ? '../../bench/http/run.js' : '../../bench/run.js', import.meta.url),
  );
  if (!existsSync(script)) {
    process.stderr.write(`ringstore bench: ${script} is missing; run \`npm run build\` first\n`);
    return Promise.resolve(1);
  }
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, ...rest], { stdio: 'inherit' });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
    child.on('error', () => resolve(1));
  });
}
