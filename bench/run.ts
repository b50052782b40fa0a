import { execFileSync, fork } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { cpus, freemem, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runCharts } from './charts/run-charts.js';
import { writeCharts } from './charts/write-charts.js';
import type { CaseJob } from './child.js';
import { type BenchConfig, configFromEnv } from './config.js';
import { type CaseResult, medianRounds } from './measure.js';
import {
  type CaseFailure,
  checkOptInTargets,
  checkTargets,
  type MachineInfo,
  type RunReport,
  renderMarkdown,
  renderText,
  withRatios,
} from './report.js';
import { type CaseSpec, selectSpecs } from './specs.js';

/**
 * `npm run bench [filter words…]`: runs each selected case in its own child process, one after the
 * other (peak RSS per case, no case warming the next one's heap), prints a table and writes
 * bench/results/<date>.json plus latest.json and latest.md. All data lives in one temp directory
 * that is removed at the end, whatever happens.
 */
const projectRoot = fileURLToPath(new URL('../../', import.meta.url));
const resultsDir = join(projectRoot, 'bench', 'results');
const compiledDir = fileURLToPath(new URL('../', import.meta.url));

/**
 * Case children run from a private copy of dist/, taken at start: on a machine where others
 * rebuild the project while the bench runs, a child must never load a half-written module. The
 * copy sits under the project's .tmp/ so `node_modules` still resolves, and keeps the `dist/`
 * name so worker entry points resolve as they do from dist/ itself.
 */
function snapshotCompiled(): { childScript: string; remove(): void } {
  const root = mkdtempSync(join(projectRoot, '.tmp', 'bench-'));
  cpSync(compiledDir, join(root, 'dist'), { recursive: true });
  return {
    childScript: join(root, 'dist', 'bench', 'child.js'),
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** statfs types of file systems that live in RAM. */
const RAM_FILE_SYSTEMS = new Set([0x01021994 /* tmpfs */, 0x858458f6 /* ramfs */]);

/**
 * Where case data goes: BENCH_DATA_DIR when set, else os.tmpdir() unless that lives in RAM (a
 * tmpfs /tmp would make fsync free and hold gigabytes of scale stores in memory), in which case the
 * project's .tmp/, on the repository's disk.
 */
function dataRoot(): string {
  const chosen = process.env.BENCH_DATA_DIR;
  if (chosen !== undefined && chosen !== '') return chosen;
  if (!RAM_FILE_SYSTEMS.has(statfsSync(tmpdir()).type)) return tmpdir();
  return join(projectRoot, '.tmp');
}

function machineInfo(root: string): MachineInfo {
  const disk = statfsSync(root);
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: projectRoot,
      encoding: 'utf8',
    }).trim();
  } catch {
    // Not a git checkout (e.g. an installed package): the commit stays unknown.
  }
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    totalMemMb: Math.round(totalmem() / 1024 / 1024),
    freeMemMb: Math.round(freemem() / 1024 / 1024),
    freeDiskMb: Math.round((disk.bavail * disk.bsize) / 1024 / 1024),
    tmpdir: root,
    node: process.version,
    platform: process.platform,
    kernel: release(),
    loadAverageStart: loadavg(),
    loadAverageEnd: [],
    commit,
  };
}

type ChildAnswer = { results: CaseResult[] } | { error: string };

/** Runs one spec in a fresh child; a crash, a hang or a thrown error becomes a failure, never a lost run. */
function runChild(
  childScript: string,
  spec: CaseSpec,
  config: BenchConfig,
  dir: string,
): Promise<CaseResult[]> {
  const job: CaseJob = {
    module: spec.module,
    variant: spec.variant,
    dir,
    config: { ...config, inFlight: spec.inFlight ?? config.inFlight },
  };
  // Every worker thread of the child announces its tid (bench/thread-roles.ts): workers inherit execArgv.
  const preload = pathToFileURL(join(dirname(childScript), 'thread-tag-preload.js')).href;
  const execArgv: string[] = ['--import', preload];
  const profileDir = process.env.BENCH_CPU_PROF;
  if (profileDir !== undefined && profileDir !== '') {
    execArgv.push('--cpu-prof', `--cpu-prof-dir=${join(profileDir, spec.id)}`);
  }
  // A case that overruns its cap by this much is hung: kill it rather than stall the whole run.
  const killAfterMs = (spec.timeoutSeconds?.(config) ?? config.caseSeconds * 3 + 180) * 1000;
  return new Promise((resolve, reject) => {
    const child = fork(childScript, [], {
      env: { ...process.env, BENCH_JOB: JSON.stringify(job) },
      execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let answer: ChildAnswer | undefined;
    const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('message', (message) => {
      answer = message as ChildAnswer;
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (answer !== undefined && 'results' in answer) resolve(answer.results);
      else if (answer !== undefined) reject(new Error(answer.error));
      else reject(new Error(`case child exited with ${signal ?? `code ${code}`} and no results`));
    });
  });
}

/** Runs one spec once, printing its rows as they come; a failure is recorded and the run goes on. */
async function runSpec(
  childScript: string,
  spec: CaseSpec,
  config: BenchConfig,
  runDir: string,
  round: number,
  failures: CaseFailure[],
): Promise<CaseResult[]> {
  const dir = join(runDir, `${spec.id}-${round}`);
  mkdirSync(dir);
  const started = performance.now();
  try {
    const rows = await runChild(childScript, spec, config, dir);
    if (spec.inFlight !== undefined) for (const row of rows) row.id = `${row.id} @${spec.inFlight}`;
    for (const row of rows) console.log(`  ${row.id.padEnd(34)} ${summary(row)}`);
    return rows;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    failures.push({ spec: `${spec.id} (round ${round})`, error: message });
    console.log(`  ${spec.id.padEnd(34)} FAILED: ${message.split('\n')[0]}`);
    return [];
  } finally {
    rmSync(dir, { recursive: true, force: true });
    console.log(`  (${spec.id}: ${((performance.now() - started) / 1000).toFixed(1)} s)`);
  }
}

function summary(row: CaseResult): string {
  if (row.open !== undefined) {
    return `open ${row.open.openSeconds.toFixed(3)} s, RSS ${row.open.rssAfterOpenMb} MiB after open`;
  }
  const cpu =
    row.cpu === undefined
      ? ''
      : `, CPU ${row.cpu.microsPerEvent.toFixed(2)} µs/event, ${row.cpu.busyCores.toFixed(2)} busy cores`;
  return `${row.eventsPerSec.toLocaleString('en-US').padStart(12)} events/s${row.capped ? ' (capped)' : ''}${cpu}`;
}

function fileStamp(date: Date): string {
  return date
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replaceAll(':', '-');
}

/**
 * The opt-in cases never run in a full run, so latest.* never shows them: each writes its own
 * <latest>-latest.{json,md} (e.g. scale-latest.md) with its rows, its failures and its targets.
 */
function writeGroupLatest(
  report: RunReport,
  specs: readonly CaseSpec[],
  specOfRow: Map<string, CaseSpec>,
): string[] {
  const written: string[] = [];
  for (const group of new Set(specs.flatMap((spec) => spec.latest ?? []))) {
    const results = report.results.filter((row) => specOfRow.get(row.id)?.latest === group);
    const groupSpecs = specs.filter((spec) => spec.latest === group);
    const failures = report.failures.filter((failure) =>
      groupSpecs.some((spec) => failure.spec.startsWith(spec.id)),
    );
    if (results.length === 0 && failures.length === 0) continue;
    const groupReport: RunReport = { ...report, results, failures, targets: checkOptInTargets(results) };
    const base = join(resultsDir, `${group}-latest`);
    writeFileSync(`${base}.json`, `${JSON.stringify(groupReport, null, 2)}\n`);
    writeFileSync(`${base}.md`, renderMarkdown(groupReport));
    written.push(`${base}.json`, `${base}.md`);
    written.push(...writeCharts(resultsDir, `${group}-latest`, runCharts(groupReport)));
  }
  return written;
}

async function main(): Promise<void> {
  const filters = process.argv.slice(2);
  const config = configFromEnv();
  const specs = selectSpecs(filters);
  if (specs.length === 0) {
    console.error(`no case matches ${filters.join(' ')}`);
    process.exitCode = 2;
    return;
  }
  const root = dataRoot();
  mkdirSync(root, { recursive: true });
  const machine = machineInfo(root);
  const startedAt = new Date();
  console.log(
    `ringstore bench: ${specs.length} case(s), ${config.events.toLocaleString('en-US')} events of ` +
      `${config.eventBytes} B${config.quick ? ' (quick)' : ''} on ${machine.cpus} CPUs, Node ${machine.node}`,
  );
  const runDir = mkdtempSync(join(root, 'ringstore-bench-'));
  mkdirSync(join(projectRoot, '.tmp'), { recursive: true });
  const snapshot = snapshotCompiled();
  const failures: CaseFailure[] = [];
  const cleanUp = () => {
    rmSync(runDir, { recursive: true, force: true });
    snapshot.remove();
  };
  process.once('SIGINT', () => {
    cleanUp();
    process.exit(130);
  });
  const rounds: CaseResult[][] = [];
  const specOfRow = new Map<string, CaseSpec>();
  try {
    for (let round = 1; round <= config.rounds; round++) {
      if (config.rounds > 1) console.log(`round ${round} of ${config.rounds}`);
      const rows: CaseResult[] = [];
      rounds.push(rows);
      for (const spec of specs) {
        if (spec.once === true && round > 1) continue;
        const caseRows = await runSpec(snapshot.childScript, spec, config, runDir, round, failures);
        for (const row of caseRows) specOfRow.set(row.id, spec);
        rows.push(...caseRows);
      }
    }
  } finally {
    cleanUp();
  }
  const results = medianRounds(rounds);
  machine.loadAverageEnd = loadavg();
  const rated = withRatios(results);
  const report: RunReport = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    filters,
    config,
    machine,
    results: rated,
    failures,
    targets: checkTargets(rated),
  };
  console.log(`\n${renderText(report)}\n`);
  mkdirSync(resultsDir, { recursive: true });
  const partial = filters.length > 0 || config.quick;
  const suffix = config.quick ? '-quick' : filters.length > 0 ? '-partial' : '';
  const datedFile = join(resultsDir, `${fileStamp(startedAt)}${suffix}.json`);
  writeFileSync(datedFile, `${JSON.stringify(report, null, 2)}\n`);
  // latest.* describe full runs only, so a filtered or quick run never replaces the reference numbers.
  if (!partial || process.env.BENCH_WRITE_LATEST === '1') {
    writeFileSync(join(resultsDir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(join(resultsDir, 'latest.md'), renderMarkdown(report));
    for (const file of writeCharts(resultsDir, 'latest', runCharts(report))) console.log(`chart: ${file}`);
  }
  console.log(`results: ${datedFile}${partial ? '' : ' (and latest.json, latest.md)'}`);
  if (!config.quick || process.env.BENCH_WRITE_LATEST === '1') {
    for (const file of writeGroupLatest(report, specs, specOfRow)) console.log(`results: ${file}`);
  }
  if (failures.length > 0) process.exitCode = 1;
}

await main();
