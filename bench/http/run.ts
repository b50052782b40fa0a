import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { httpCharts } from '../charts/http-charts.js';
import { writeCharts } from '../charts/write-charts.js';
import { processMicros, threadMicros } from '../thread-cpu.js';
import { type Counters, SCENARIOS, type Scenario } from './scenarios.js';

/**
 * `npm run bench:http [-- --duration 8 --connections 50 --profile --durability fsync --name http-latest] [scenario…]`
 *
 * Runs every scenario with autocannon against three servers started as child processes, side by
 * side in one run: the bare node:http ceiling (bare-server.ts), ringstore's HTTP layer over a store
 * that does nothing (stub-server.ts: what HTTP, parsing and validation cost apart from the store)
 * and `ringstore serve` on a fresh temp directory. Each measurement also reads the server's on-CPU
 * time from /proc (main thread and whole process) and reports µs per request. Then each ringstore
 * scenario runs again at half of the request rate it reached (autocannon's overallRate), for the
 * latency of a store that is not saturated. Prints tables and writes bench/results/<name>.json and
 * .md (default http-latest). With --profile the ringstore process runs under --cpu-prof and the
 * profile summary is printed.
 */
const projectRoot = fileURLToPath(new URL('../../../', import.meta.url));
const resultsDir = join(projectRoot, 'bench', 'results');
const cliScript = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const bareScript = fileURLToPath(new URL('./bare-server.js', import.meta.url));
const stubScript = fileURLToPath(new URL('./stub-server.js', import.meta.url));
const profileSummary = fileURLToPath(new URL('../profile-summary.js', import.meta.url));

type Target = 'bare' | 'stub' | 'ringstore';

interface Measurement {
  scenario: string;
  target: Target;
  seconds: number;
  requestsPerSec: number;
  eventsPerSec: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  responses2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** The server's on-CPU time per request answered: its main thread, and all of its threads. */
  cpuMainUsPerRequest: number;
  cpuProcessUsPerRequest: number;
}

/** A ringstore scenario run again at half of the request rate it reached. */
interface HalfLoadMeasurement {
  scenario: string;
  /** The rate asked of autocannon (overallRate), half of the measured maximum. */
  offeredRequestsPerSec: number;
  requestsPerSec: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  non2xx: number;
  errors: number;
}

interface Server {
  child: ChildProcess;
  url: string;
}

/** On-CPU µs of a server process so far: its main thread (tid = pid) and all of its threads. */
function serverCpu(server: Server): { main: number; process: number } {
  const pid = server.child.pid!;
  return { main: threadMicros(pid, pid), process: processMicros(pid) };
}

/** Every child started, so that a failed run never leaves a server behind. */
const children = new Set<ChildProcess>();

function startServer(args: string[], readyMessage: string): Promise<Server> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${args.join(' ')}`)), 60_000);
    child.on('exit', (code) => reject(new Error(`server exited with ${code} before listening`)));
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      try {
        const record = JSON.parse(line) as { msg?: string; url?: string };
        if (record.msg === readyMessage && record.url) {
          clearTimeout(timer);
          resolve({ child, url: record.url });
        }
      } catch {
        // Not a JSON log line: ignore.
      }
    });
  });
}

function stopServer(server: Server): Promise<number | null> {
  return new Promise((resolve) => {
    server.child.once('exit', (code) => resolve(code));
    server.child.kill('SIGTERM');
  });
}

/** How the scenario's bodies and answers are made and counted: the stub answers as ringstore does. */
function requestStyle(target: Target): 'bare' | 'ringstore' {
  return target === 'bare' ? 'bare' : 'ringstore';
}

async function measure(
  scenario: Scenario,
  target: Target,
  server: Server,
  seconds: number,
  connections: number,
): Promise<Measurement> {
  const { url } = server;
  const style = requestStyle(target);
  // One second of warm-up (JIT, connection setup) that is not recorded.
  await autocannon({ url, connections, duration: 1, requests: scenario.requests({ events: 0 }, style) });
  const counters: Counters = { events: 0 };
  const cpuBefore = serverCpu(server);
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    timeout: 30,
    requests: scenario.requests(counters, style),
  });
  const cpuAfter = serverCpu(server);
  const answered = Math.max(1, result.requests.total);
  return {
    cpuMainUsPerRequest: Math.round(((cpuAfter.main - cpuBefore.main) / answered) * 10) / 10,
    cpuProcessUsPerRequest: Math.round(((cpuAfter.process - cpuBefore.process) / answered) * 10) / 10,
    scenario: scenario.name,
    target,
    seconds: result.duration,
    requestsPerSec: Math.round(result.requests.total / result.duration),
    eventsPerSec: Math.round(counters.events / result.duration),
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
    responses2xx: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}

/** The same scenario at a fixed offered rate (connections share it), after the maximum-load runs. */
async function measureAtRate(
  scenario: Scenario,
  server: Server,
  seconds: number,
  connections: number,
  requestsPerSec: number,
): Promise<HalfLoadMeasurement> {
  const result = await autocannon({
    url: server.url,
    connections,
    duration: seconds,
    timeout: 30,
    overallRate: requestsPerSec,
    requests: scenario.requests({ events: 0 }, 'ringstore'),
  });
  return {
    scenario: scenario.name,
    offeredRequestsPerSec: requestsPerSec,
    requestsPerSec: Math.round(result.requests.total / result.duration),
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

function renderTable(rows: readonly Measurement[], ratios: (row: Measurement) => number): string {
  const header =
    '| scenario | target | req/s | events/s | p50 ms | p99 ms | 2xx | non-2xx | errors | server CPU µs/request (main / process) | events/s vs bare |';
  const lines = [header, '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|'];
  for (const r of rows) {
    lines.push(
      `| ${r.scenario} | ${r.target} | ${r.requestsPerSec} | ${r.eventsPerSec} | ${r.latencyP50Ms} | ${r.latencyP99Ms} | ${r.responses2xx} | ${r.non2xx} | ${r.errors + r.timeouts} | ${r.cpuMainUsPerRequest} / ${r.cpuProcessUsPerRequest} | ${ratios(r).toFixed(2)} |`,
    );
  }
  return lines.join('\n');
}

function renderHalfLoadTable(rows: readonly HalfLoadMeasurement[]): string {
  const lines = [
    '| scenario | offered req/s (half of the maximum) | req/s | p50 ms | p99 ms | non-2xx | errors |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.scenario} | ${r.offeredRequestsPerSec} | ${r.requestsPerSec} | ${r.latencyP50Ms} | ${r.latencyP99Ms} | ${r.non2xx} | ${r.errors} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: {
      duration: { type: 'string', default: '8' },
      connections: { type: 'string', default: '50' },
      durability: { type: 'string', default: 'fsync' },
      profile: { type: 'boolean', default: false },
      name: { type: 'string', default: 'http-latest' },
    },
    allowPositionals: true,
  });
  if (!/^[a-z0-9-]{1,40}$/.test(values.name as string)) throw new Error('--name: 1 to 40 of a-z, 0-9, -');
  const seconds = Number(values.duration);
  const connections = Number(values.connections);
  const scenarios =
    positionals.length === 0 ? SCENARIOS : SCENARIOS.filter((s) => positionals.includes(s.name));
  const work = mkdtempSync(join(tmpdir(), 'ringstore-http-bench-'));
  const profileDir = values.profile ? mkdtempSync(join(tmpdir(), 'ringstore-http-profile-')) : undefined;
  const rows: Measurement[] = [];
  const halfLoad: HalfLoadMeasurement[] = [];
  let ringstoreExit: number | null = null;
  try {
    // Both servers run for the whole run and each scenario measures the ceiling and ringstore back
    // to back, so a change in the machine's background load affects both sides alike. The idle
    // server costs nothing meanwhile.
    const bare = await startServer([bareScript], 'bare listening');
    const stub = await startServer([stubScript], 'stub listening');
    const nodeFlags = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
    const ringstore = await startServer(
      [
        ...nodeFlags,
        cliScript,
        'serve',
        '--dir',
        join(work, 'data'),
        '--port',
        '0',
        '--durability',
        values.durability as string,
        '--log-level',
        'info',
      ],
      'ringstore listening',
    );
    for (const scenario of scenarios) {
      for (const [target, server] of [
        ['bare', bare],
        ['stub', stub],
        ['ringstore', ringstore],
      ] as const) {
        rows.push(await measure(scenario, target, server, seconds, connections));
        process.stderr.write(`${target.padEnd(9)} ${scenario.name}: ${JSON.stringify(rows.at(-1))}\n`);
      }
    }
    for (const scenario of scenarios) {
      const maximum = rows.find((r) => r.target === 'ringstore' && r.scenario === scenario.name);
      if (!maximum || maximum.requestsPerSec < 2) continue;
      const rate = Math.round(maximum.requestsPerSec / 2);
      halfLoad.push(await measureAtRate(scenario, ringstore, seconds, connections, rate));
      process.stderr.write(`half load ${scenario.name}: ${JSON.stringify(halfLoad.at(-1))}\n`);
    }
    await stopServer(bare);
    await stopServer(stub);
    ringstoreExit = await stopServer(ringstore);
  } finally {
    for (const child of children) child.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  }

  const bareOf = (name: string) => rows.find((r) => r.target === 'bare' && r.scenario === name);
  const ratioToBare = (row: Measurement) => {
    const base = bareOf(row.scenario);
    return base && base.eventsPerSec > 0 ? row.eventsPerSec / base.eventsPerSec : 0;
  };
  const ratios: Record<string, number> = {};
  for (const r of rows) if (r.target === 'ringstore') ratios[r.scenario] = ratioToBare(r);
  const ingest = rows.find((r) => r.target === 'ringstore' && r.scenario === 'ingest-ndjson');
  const bare10 = bareOf('append-10');
  const ingestVsBare10 =
    ingest && bare10 && bare10.eventsPerSec > 0 ? ingest.eventsPerSec / bare10.eventsPerSec : undefined;
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: projectRoot,
      encoding: 'utf8',
    }).trim();
  } catch {
    // Not a git checkout: the commit stays unknown.
  }
  const report = {
    date: new Date().toISOString(),
    commit,
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model.trim(),
      node: process.version,
      loadAverage: loadavg(),
    },
    settings: { seconds, connections, durability: values.durability, profile: values.profile },
    rows,
    halfLoad,
    ratios,
    ingestVsBareAppend10: ingestVsBare10,
    targets: {
      append10AtLeast55PercentOfCeiling: (ratios['append-10'] ?? 0) >= 0.55,
      ingestAtLeast150PercentOfCeilingAppend10: (ingestVsBare10 ?? 0) >= 1.5,
    },
    ringstoreCleanExit: ringstoreExit === 0,
  };
  const table = renderTable(rows, ratioToBare);
  // The profile summary goes into the report: "where does the time go" next to the numbers.
  let profileText = '';
  if (profileDir) {
    try {
      profileText = execFileSync(process.execPath, [profileSummary, profileDir, '15'], { encoding: 'utf8' });
    } finally {
      rmSync(profileDir, { recursive: true, force: true });
    }
  }
  const markdown = [
    '# HTTP load test (autocannon)',
    '',
    `${report.date}, commit ${commit}, ${report.machine.cpus} × ${report.machine.cpuModel}, Node ${process.version}.`,
    `${connections} connections, ${seconds} s per scenario after 1 s of warm-up; ringstore durability '${values.durability}'.`,
    'The ceiling ("bare") is node:http that only JSON.parses each body (each line for NDJSON) and answers 204.',
    '"stub" is ringstore\'s HTTP layer (fastify, parsing, validation, answers) over a store whose put does nothing.',
    'Server CPU is the on-CPU time of the server process from /proc during the measured seconds, per request answered.',
    '',
    ...scenarios.map((s) => `- **${s.name}**: ${s.description}`),
    '',
    table,
    '',
    `ringstore ÷ ceiling events/s: ${Object.entries(ratios)
      .map(([k, v]) => `${k} ${v.toFixed(2)}`)
      .join(', ')}.`,
    ingestVsBare10 === undefined
      ? ''
      : `NDJSON ingest ÷ ceiling's 10-event appends: ${ingestVsBare10.toFixed(2)}.`,
    `Targets (issue 11): append-10 ≥ 0.55 of the ceiling: ${(ratios['append-10'] ?? 0).toFixed(2)} ` +
      `(${report.targets.append10AtLeast55PercentOfCeiling ? 'met' : '**missed**'}); NDJSON ingest ≥ 1.5 × the ` +
      `ceiling's 10-event appends: ${(ingestVsBare10 ?? 0).toFixed(2)} ` +
      `(${report.targets.ingestAtLeast150PercentOfCeilingAppend10 ? 'met' : '**missed**'}).`,
    `ringstore exited ${ringstoreExit === 0 ? 'cleanly (0)' : `with ${ringstoreExit}`} on SIGTERM.`,
    '',
    '## ringstore at half of its maximum load',
    '',
    `Each scenario again for ${seconds} s with autocannon's overallRate at half of the req/s ringstore reached above ` +
      '(same connections): the latency of a store with headroom.',
    '',
    renderHalfLoadTable(halfLoad),
    '',
    ...(profileText
      ? [
          '## CPU profile of the ringstore process (self time, per thread)',
          '',
          '```',
          profileText.trimEnd(),
          '```',
          '',
        ]
      : []),
  ].join('\n');
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, `${values.name}.json`), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(resultsDir, `${values.name}.md`), markdown);
  const charts = writeCharts(resultsDir, values.name, httpCharts(report));
  process.stdout.write(`${markdown}\n`);
  for (const file of charts) console.log(`chart: ${file}`);
}

await main();
