import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { packageVersion } from '../api/package-version.js';
import { RingStoreError } from '../errors.js';
import { parseServeConfig, serveUsage } from './config.js';

const USAGE = `usage: ringstore <command> [options]

commands:
  serve        run the HTTP API over a data directory
  verify       check every record and CRC of a data directory: ringstore verify --dir DIR
  inspect      list domains, aggregate types, event types, counts and sizes: ringstore inspect --dir DIR
  backup       online backup, consistent at one generation: ringstore backup --dir DIR --to NEWDIR
  repartition  write a new store with domains renamed, split, merged or dropped (offline):
               ringstore repartition --from DIR --to NEWDIR --plan PLAN.json [--dry-run]
  cluster      a NATS cluster: ringstore cluster status|import --nats URLS (docs/CLUSTER.md)
  bench        run the benchmark suite (--http: the HTTP load test)

options:
  -h, --help      show this help (ringstore <command> --help: the command's options)
  -v, --version   print the version

Documentation: README.md, docs/OPERATIONS.md (flags, logs, shutdown), docs/HTTP.md.
`;

const BENCH_USAGE = `usage: ringstore bench [--http] [arguments…]

Runs the compiled benchmark suite (dist/bench/run.js; with --http the HTTP load test,
dist/bench/http/run.js) with the remaining arguments. Run it on an otherwise idle machine.

options:
  --http        the HTTP load test instead of the write/read-path benchmarks
  -h, --help    show this help
`;

async function commandUsage(command: string): Promise<string | undefined> {
  switch (command) {
    case 'serve':
      return `${serveUsage()}\n`;
    case 'verify':
      return (await import('./verify.js')).VERIFY_USAGE;
    case 'inspect':
      return (await import('./inspect.js')).INSPECT_USAGE;
    case 'backup':
      return (await import('./backup.js')).BACKUP_USAGE;
    case 'repartition':
      return (await import('./repartition.js')).REPARTITION_USAGE;
    case 'bench':
      return BENCH_USAGE;
    case 'cluster':
      return (await import('./cluster.js')).CLUSTER_USAGE;
    default:
      return undefined;
  }
}

const wantsHelp = (args: readonly string[]): boolean => args.includes('--help') || args.includes('-h');

/** Runs one CLI command; resolves to the exit code (serve resolves only on a startup failure). */
export async function runCli(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<number | undefined> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined) {
      process.stderr.write(USAGE);
      return 2;
    }
    if (command === '--help' || command === '-h' || command === 'help') {
      const topic = command === 'help' ? rest[0] : undefined;
      const usage = topic === undefined ? USAGE : await commandUsage(topic);
      if (usage === undefined) throw usageError(`unknown command ${JSON.stringify(topic)}`);
      process.stdout.write(usage);
      return 0;
    }
    if (command === '--version' || command === '-v' || command === 'version') {
      process.stdout.write(`ringstore ${packageVersion()}\n`);
      return 0;
    }
    const usage = await commandUsage(command);
    if (usage === undefined) {
      throw usageError(
        command.startsWith('-') ? `unknown option ${command}` : `unknown command ${JSON.stringify(command)}`,
      );
    }
    if (wantsHelp(rest)) {
      process.stdout.write(usage);
      return 0;
    }
    switch (command) {
      case 'serve': {
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
      case 'backup':
        return await (await import('./backup.js')).runBackup(rest);
      case 'repartition':
        return await (await import('./repartition.js')).runRepartition(rest);
      case 'cluster':
        return await (await import('./cluster.js')).runCluster(rest, env);
      default:
        return await (await import('./bench.js')).runBench(rest);
    }
  } catch (err) {
    const prefix = command === undefined || command.startsWith('-') ? 'ringstore' : `ringstore ${command}`;
    process.stderr.write(`${prefix}: ${oneLine(err)}\n`);
    return err instanceof RingStoreError && (err.code === 'INVALID_OPTION' || err.code === 'INVALID_PLAN')
      ? 2
      : 1;
  }
}

function usageError(message: string): RingStoreError {
  return new RingStoreError('INVALID_OPTION', `${message} (see ringstore --help)`);
}

/**
 * An error as one line for a person at a terminal: the catalog code and message, or a system
 * error's message; never a stack trace (a bug shows its stack with RINGSTORE_DEBUG=1).
 */
function oneLine(err: unknown): string {
  if (process.env.RINGSTORE_DEBUG === '1' && err instanceof Error && err.stack) return err.stack;
  if (err instanceof RingStoreError) return `${err.code}: ${err.message}`.split('\n')[0] as string;
  if (err instanceof Error) return err.message.split('\n')[0] as string;
  return String(err);
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
