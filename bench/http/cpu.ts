import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { median } from '../measure.js';
import { processMicros, threadMicros } from '../thread-cpu.js';
import { type Counters, SCENARIOS } from './scenarios.js';

/**
 * `node dist/bench/http/cpu.js [--variant 'name=path/to/cli/main.js [serve options]' …] [--requests 20000] [--rounds 3]
 *   [--connections 50] [--durability fsync] [scenario]`
 *
 * CPU time per request of `ringstore serve`, which a machine shared with other benchmarks measures
 * far more steadily than req/s. Every variant (default: this build) serves a fresh directory; the
 * rounds alternate A B B A …, each sending exactly --requests requests of the scenario, and read the
 * server's CPU time from /proc around them (Linux): the main thread (tid = pid, where HTTP, JSON and
 * the producer run) and the whole process (writer thread, CRC pool, GC helpers included). Printed
 * as µs per request and per event; the medians of the rounds are the result. A variant whose path
 * is bench/http/bare-server.js is the bare ceiling, bench/http/stub-server.js the HTTP layer over a
 * null store, bench/http/raw-server.js the same parsing and validation on bare node:http (what
 * fastify costs is stub minus raw). With --profile DIR every server runs under
 * --cpu-prof and writes its profiles to DIR/<variant> (summarise with bench/profile-summary.js).
 */
const thisBuild = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

interface Variant {
  name: string;
  cli: string;
  child: ChildProcess;
  url: string;
  dir: string;
  mainMicros: number[];
  /** Share of the round's wall time the main thread ran. */
  mainBusy: number[];
  processMicros: number[];
}

function start(
  name: string,
  cli: string,
  serveArgs: string[],
  profileDir: string | undefined,
): Promise<Variant> {
  const dir = mkdtempSync(join(tmpdir(), 'ringstore-http-cpu-'));
  // The measuring sticks (bare-, stub- and raw-server.js) take no arguments and announce themselves
  // under their own names.
  const standalone = /(bare|stub|raw)-server\.js$/.exec(cli);
  const flags = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${join(profileDir, name)}`] : [];
  const args = standalone
    ? [...flags, cli]
    : [...flags, cli, 'serve', '--dir', join(dir, 'data'), '--port', '0', ...serveArgs];
  const readyMessage = standalone ? `${standalone[1]} listening` : 'ringstore listening';
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`${name} did not start`)), 60_000);
    child.once('exit', (code) => fail(new Error(`${name} exited with ${code} before listening`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      try {
        const record = JSON.parse(line) as { msg?: string; url?: string };
        if (record.msg === readyMessage && record.url) {
          clearTimeout(timer);
          done({ name, cli, child, url: record.url, dir, mainMicros: [], processMicros: [], mainBusy: [] });
        }
      } catch {
        // Not a JSON log line.
      }
    });
  });
}

async function send(url: string, scenarioName: string, amount: number, connections: number): Promise<void> {
  const scenario = SCENARIOS.find((s) => s.name === scenarioName);
  if (!scenario) throw new Error(`unknown scenario ${scenarioName}`);
  const counters: Counters = { events: 0 };
  const result = await autocannon({
    url,
    connections,
    amount,
    timeout: 30,
    requests: scenario.requests(counters, 'ringstore'),
  });
  if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0) {
    throw new Error(
      `${url} ${scenarioName}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts`,
    );
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: {
      variant: { type: 'string', multiple: true },
      requests: { type: 'string', default: '20000' },
      rounds: { type: 'string', default: '3' },
      connections: { type: 'string', default: '50' },
      durability: { type: 'string', default: 'fsync' },
      profile: { type: 'string' },
    },
    allowPositionals: true,
  });
  const scenarioName = positionals[0] ?? 'append-10';
  const eventsPerRequest = SCENARIOS.find((s) => s.name === scenarioName)?.eventsPerWrite ?? 1;
  const amount = Number(values.requests);
  const rounds = Number(values.rounds);
  const connections = Number(values.connections);
  const specs = (values.variant ?? [`this=${thisBuild}`]).map((spec) => {
    const at = spec.indexOf('=');
    if (at < 1) throw new Error(`--variant name=path/to/main.js, got ${spec}`);
    const [path, ...extra] = spec.slice(at + 1).split(' ');
    return { name: spec.slice(0, at), cli: resolve(path as string), extra };
  });
  const variants: Variant[] = [];
  try {
    for (const spec of specs)
      variants.push(
        await start(
          spec.name,
          spec.cli,
          [...spec.extra, '--durability', values.durability as string],
          values.profile,
        ),
      );
    for (const v of variants) await send(v.url, scenarioName, Math.max(2000, amount / 4), connections);
    for (let round = 0; round < rounds; round++) {
      // A B, then B A: neither variant always runs first after the other's burst.
      const order = round % 2 === 0 ? variants : [...variants].reverse();
      for (const v of order) {
        const pid = v.child.pid as number;
        const main0 = threadMicros(pid, pid);
        const all0 = processMicros(pid);
        const wall0 = performance.now();
        await send(v.url, scenarioName, amount, connections);
        const wallMicros = (performance.now() - wall0) * 1000;
        const mainMicros = threadMicros(pid, pid) - main0;
        v.mainMicros.push(mainMicros / amount);
        v.processMicros.push((processMicros(pid) - all0) / amount);
        v.mainBusy.push(mainMicros / wallMicros);
        process.stderr.write(
          `round ${round} ${v.name}: main ${v.mainMicros.at(-1)?.toFixed(1)} µs/req (busy ${(100 * (v.mainBusy.at(-1) ?? 0)).toFixed(0)}%), process ${v.processMicros.at(-1)?.toFixed(1)} µs/req, ${Math.round(amount / (wallMicros / 1e6))} req/s\n`,
        );
      }
    }
  } finally {
    for (const v of variants) {
      v.child.kill('SIGTERM');
      await new Promise((done) => v.child.once('exit', done));
      rmSync(v.dir, { recursive: true, force: true });
    }
  }
  process.stdout.write(
    `${scenarioName}, ${amount} requests × ${rounds} rounds, ${connections} connections, durability ${values.durability}\n`,
  );
  process.stdout.write(
    '| variant | main µs/req | main µs/event | process µs/req | main busy | main rounds |\n|---|---:|---:|---:|---:|---|\n',
  );
  for (const v of variants) {
    const main = median(v.mainMicros);
    process.stdout.write(
      `| ${v.name} | ${main.toFixed(1)} | ${(main / eventsPerRequest).toFixed(2)} | ${median(v.processMicros).toFixed(1)} | ${(100 * median(v.mainBusy)).toFixed(0)}% | ${v.mainMicros.map((m) => m.toFixed(1)).join(' ')} |\n`,
    );
  }
}

await main();
