import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { RingStoreError } from '../errors.js';
import { parseServeConfig, serveUsage } from './config.js';

const USAGE = `usage: ringstore <command> [options]

commands:
  serve     run the HTTP API over a data directory (see \`ringstore serve --help\`)
  verify    check every record and CRC of a data directory: ringstore verify --dir DIR
  inspect   list domains, aggregate types, event types, counts and sizes: ringstore inspect --dir DIR
  bench     run the benchmark suite (--http: the HTTP load test)
`;

/** Runs one CLI command; resolves to the exit code (serve resolves only on a startup failure). */
export async function runCli(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<number | undefined> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve': {
        if (rest.includes('--help')) {
          process.stdout.write(`${serveUsage()}\n`);
          return 0;
        }
        const config = parseServeConfig(rest, env);
        // Each command loads only its own modules: serve starts without the verifier, and so on.
        const { exitOnSignals, startService } = await import('./serve.js');
        const { openServeStore } = await import('./open-store.js');
        const starting = startService(config, openServeStore);
        exitOnSignals(starting, { watchParent: env.npm_command !== undefined });
        await starting;
        return undefined;
      }
      case 'verify':
        return await (await import('./verify.js')).runVerify(rest);
      case 'inspect':
        return await (await import('./inspect.js')).runInspect(rest);
      case 'bench':
        return await (await import('./bench.js')).runBench(rest);
      case undefined:
      case '--help':
      case 'help':
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        process.stderr.write(`ringstore: unknown command ${JSON.stringify(command)}\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof RingStoreError) {
      process.stderr.write(`ringstore ${command}: ${err.code}: ${err.message}\n`);
      return err.code === 'INVALID_OPTION' ? 2 : 1;
    }
    process.stderr.write(`ringstore ${command}: ${(err as Error)?.stack ?? String(err)}\n`);
    return 1;
  }
}

/** Runs the CLI for this process and sets the exit code when the command ends. */
export async function cliMain(): Promise<void> {
  const code = await runCli(process.argv.slice(2));
  if (code !== undefined) process.exitCode = code;
}

/** True when Node was started on this file, also through a symlink (import.meta.url is the real path). */
function isEntryPoint(script: string | undefined): boolean {
  if (script === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint(process.argv[1])) void cliMain();
