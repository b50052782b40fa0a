import type { BenchConfig } from './config.js';
import type { ThreadCpu } from './cpu-meter.js';
import type { CaseResult } from './measure.js';
import {
  checkReadbackTargets,
  checkScaleTargets,
  describeOptInWorkloads,
  OPEN_HEADER,
  openTableRow,
} from './report-scale.js';
import type { Ratios, TargetCheck } from './report-types.js';

export type { Ratios, TargetCheck } from './report-types.js';

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  totalMemMb: number;
  freeMemMb: number;
  freeDiskMb: number;
  tmpdir: string;
  node: string;
  platform: string;
  kernel: string;
  loadAverageStart: number[];
  loadAverageEnd: number[];
  commit: string;
}

export interface CaseFailure {
  spec: string;
  error: string;
}

export interface RunReport {
  startedAt: string;
  finishedAt: string;
  filters: string[];
  config: BenchConfig;
  machine: MachineInfo;
  results: (CaseResult & { ratios: Ratios })[];
  failures: CaseFailure[];
  targets: TargetCheck[];
}

function ratio(value: number, base: number | undefined): number | undefined {
  if (base === undefined || base <= 0 || !Number.isFinite(value)) return undefined;
  return Math.round((value / base) * 100) / 100;
}

/** The durability word in a write row's id ('fsync' or 'none'), if any. */
function durabilityOf(id: string): string | undefined {
  return id.split(' ').find((word) => word === 'fsync' || word === 'none' || word === 'write');
}

export function withRatios(results: readonly CaseResult[]): (CaseResult & { ratios: Ratios })[] {
  const byId = new Map(results.map((result) => [result.id, result]));
  const floor = byId.get('floor')?.eventsPerSec;
  const lmdbWrite = byId.get('lmdb write')?.eventsPerSec;
  return results.map((result) => {
    const ratios: Ratios = {};
    if (result.kind === 'write') {
      if (result.system !== 'floor') ratios.vsFloor = ratio(result.eventsPerSec, floor);
      // A row run at another in-flight depth (`… @1000`) is compared with lmdb at that depth.
      const depth = / @\d+$/.exec(result.id)?.[0] ?? '';
      const lmdbBase = depth === '' ? lmdbWrite : byId.get(`lmdb write${depth}`)?.eventsPerSec;
      if (result.system !== 'lmdb') ratios.vsLmdb = ratio(result.eventsPerSec, lmdbBase);
      const durability = durabilityOf(result.id);
      if (result.system === 'ringstore' && durability !== undefined) {
        ratios.vsEngine = ratio(result.eventsPerSec, byId.get(`storage-engine ${durability}`)?.eventsPerSec);
      }
    } else if (result.kind === 'read' && result.system !== 'lmdb') {
      // 'read ringstore warm' is compared with 'read lmdb warm', 'scan engine cold' with 'scan lmdb cold'.
      const peer = byId.get(result.id.replace(result.system, 'lmdb'));
      ratios.vsLmdb = ratio(result.eventsPerSec, peer?.eventsPerSec);
    }
    return { ...result, ratios };
  });
}

function best(
  results: readonly (CaseResult & { ratios: Ratios })[],
  match: (result: CaseResult) => boolean,
): (CaseResult & { ratios: Ratios }) | undefined {
  let top: (CaseResult & { ratios: Ratios }) | undefined;
  for (const result of results) {
    if (match(result) && (top === undefined || result.eventsPerSec > top.eventsPerSec)) top = result;
  }
  return top;
}

/** The targets of issues 2–4, checked against the best matching row of this run. */
export function checkTargets(results: readonly (CaseResult & { ratios: Ratios })[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const fsyncWrites = (result: CaseResult) =>
    result.system === 'ringstore' &&
    result.kind === 'write' &&
    durabilityOf(result.id) === 'fsync' &&
    // Targets are stated for the issue's 100 puts in flight, not for diagnostic depths.
    !result.id.includes(' @');
  const topWrite = best(results, fsyncWrites);
  const mainWrite = results.find((result) => result.id === 'ringstore main fsync pool');
  for (const row of [topWrite, mainWrite === topWrite ? undefined : mainWrite]) {
    if (row === undefined) continue;
    checks.push({
      target: `ringstore fsync >= 5x lmdb durable events/s (${row.id})`,
      measured: `${row.ratios.vsLmdb ?? '?'}x`,
      met: row.ratios.vsLmdb === undefined ? 'unknown' : row.ratios.vsLmdb >= 5,
    });
    checks.push({
      target: `ringstore fsync >= 30% of the raw floor (${row.id})`,
      measured: row.ratios.vsFloor === undefined ? '?' : `${Math.round(row.ratios.vsFloor * 100)}%`,
      met: row.ratios.vsFloor === undefined ? 'unknown' : row.ratios.vsFloor >= 0.3,
    });
  }
  if (topWrite === undefined) {
    checks.push({
      target: 'ringstore fsync >= 5x lmdb durable events/s',
      measured: 'not run',
      met: 'unknown',
    });
  }
  const warmRead = best(results, (result) => result.id === 'read ringstore warm');
  checks.push({
    target: 'ringstore warm read-back >= 2x lmdb warm',
    measured: warmRead?.ratios.vsLmdb === undefined ? 'not run' : `${warmRead.ratios.vsLmdb}x`,
    met: warmRead?.ratios.vsLmdb === undefined ? 'unknown' : warmRead.ratios.vsLmdb >= 2,
  });
  checks.push(...checkOptInTargets(results));
  return checks;
}

/** The targets of the opt-in scale and read-back cases, for those of their rows that ran. */
export function checkOptInTargets(results: readonly (CaseResult & { ratios: Ratios })[]): TargetCheck[] {
  return [...checkScaleTargets(results), ...checkReadbackTargets(results)];
}

function format(value: number | undefined, digits = 0): string {
  if (value === undefined || Number.isNaN(value)) return '';
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function times(value: number | undefined): string {
  return value === undefined ? '' : `${value.toFixed(2)}×`;
}

const OPS_HEADER = ['case', 'events', 'MiB', 'seconds', 'MB/s', '× cp', 'notes'];

function opsTableRow(result: CaseResult): string[] {
  return [
    result.id,
    format(result.events),
    format(result.bytes / 1024 / 1024, 1),
    format(result.seconds, 3),
    format(result.mbPerSec, 1),
    times(result.ops?.timesCp),
    result.notes.join('; '),
  ];
}

const WRITE_HEADER = [
  'case',
  'events/s',
  'CPU µs/event (main/writer/crc/other)',
  'CPU µs/event total',
  'busy cores',
  'MB/s',
  'p50 ms',
  'p99 ms',
  'events/fsync',
  'disk fsync ms',
  'peak RSS MiB',
  '× floor',
  '× lmdb',
  '× engine',
  'notes',
];
const READ_HEADER = ['case', 'what', 'events', 'events/s', 'MB/s', 'peak RSS MiB', '× lmdb', 'notes'];

/**
 * µs of CPU per event of the main thread, the writer, the CRC pool and the other threads ('–' for a
 * role without a thread), plus the producer threads when the case has some.
 */
export function cpuByRole(cpu: ThreadCpu | undefined): string {
  if (cpu === undefined) return '';
  const cell = (role: keyof ThreadCpu['roles']) =>
    cpu.roles[role].threads === 0 ? '–' : cpu.roles[role].microsPerEvent.toFixed(2);
  const roles = (['main', 'writer', 'crc', 'other'] as const).map(cell).join('/');
  return cpu.roles.producer.threads === 0 ? roles : `${roles} (producers ${cell('producer')})`;
}

function writeRow(result: CaseResult & { ratios: Ratios }): string[] {
  const notes = [...result.notes];
  if (result.rounds !== undefined)
    notes.unshift(`median of ${result.rounds.length} rounds: ${spread(result.rounds)}`);
  if (result.capped) notes.unshift(`capped after ${result.seconds}s (${format(result.events)} events)`);
  return [
    result.id,
    format(result.eventsPerSec),
    cpuByRole(result.cpu),
    format(result.cpu?.microsPerEvent, 2),
    format(result.cpu?.busyCores, 2),
    format(result.mbPerSec, 1),
    format(result.latencyP50Ms, 2),
    format(result.latencyP99Ms, 2),
    format(result.eventsPerFsync, 1),
    format(result.fsyncProbeMs, 2),
    format(result.peakRssMb),
    times(result.ratios.vsFloor),
    times(result.ratios.vsLmdb),
    times(result.ratios.vsEngine),
    notes.join('; '),
  ];
}

function spread(rounds: readonly number[]): string {
  return `${format(Math.min(...rounds))}–${format(Math.max(...rounds))}`;
}

function readRow(result: CaseResult & { ratios: Ratios }): string[] {
  const notes = [...result.notes];
  if (result.rounds !== undefined)
    notes.unshift(`median of ${result.rounds.length} rounds: ${spread(result.rounds)}`);
  return [
    result.id,
    result.description,
    format(result.events),
    format(result.eventsPerSec),
    format(result.mbPerSec, 1),
    format(result.peakRssMb),
    times(result.ratios.vsLmdb),
    notes.join('; '),
  ];
}

function markdownTable(header: string[], rows: string[][]): string {
  const escapeCell = (cell: string) => cell.replaceAll('|', '\\|');
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const row of rows) lines.push(`| ${row.map(escapeCell).join(' | ')} |`);
  return lines.join('\n');
}

function textTable(header: string[], rows: string[][]): string {
  const widths = header.map((cell, i) => Math.max(cell.length, ...rows.map((row) => row[i]!.length)));
  const line = (row: string[]) =>
    row
      .map((cell, i) =>
        i === 0 || i === row.length - 1 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!),
      )
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.map(line)].join('\n');
}

export function renderText(report: RunReport): string {
  const writes = report.results.filter((result) => result.kind === 'write');
  const reads = report.results.filter((result) => result.kind === 'read');
  const opens = report.results.filter((result) => result.kind === 'open');
  const parts: string[] = [];
  if (writes.length > 0) parts.push(textTable(WRITE_HEADER, writes.map(writeRow)));
  if (reads.length > 0) parts.push(textTable(READ_HEADER, reads.map(readRow)));
  if (opens.length > 0) parts.push(textTable(OPEN_HEADER, opens.map(openTableRow)));
  const ops = report.results.filter((result) => result.kind === 'ops');
  if (ops.length > 0) parts.push(textTable(OPS_HEADER, ops.map(opsTableRow)));
  for (const failure of report.failures)
    parts.push(`FAILED ${failure.spec}: ${failure.error.split('\n')[0]}`);
  for (const check of report.targets) {
    parts.push(
      `${check.met === true ? 'met ' : check.met === false ? 'MISS' : '?   '} ${check.target}: ${check.measured}`,
    );
  }
  return parts.join('\n\n');
}

export function renderMarkdown(report: RunReport): string {
  const { machine, config } = report;
  const writes = report.results.filter((result) => result.kind === 'write');
  const reads = report.results.filter((result) => result.kind === 'read');
  const opens = report.results.filter((result) => result.kind === 'open');
  const lines = [
    `# Bench results ${report.startedAt}`,
    '',
    `Machine: ${machine.cpus} × ${machine.cpuModel}, ${format(machine.totalMemMb)} MiB RAM, ` +
      `Node ${machine.node}, ${machine.platform} ${machine.kernel}, ${format(machine.freeDiskMb)} MiB free ` +
      `in ${machine.tmpdir}, load average ${machine.loadAverageStart.map((x) => x.toFixed(2)).join(' ')} at ` +
      `start and ${machine.loadAverageEnd.map((x) => x.toFixed(2)).join(' ')} at the end, commit ${machine.commit}.`,
    '',
    `Workload: ${format(config.events)} events of ${config.eventBytes} bytes, batches of ${config.batchEvents}, ` +
      `measured after a warm-up of ${format(config.warmupEvents ?? 0)} events put the same way into the same store, ` +
      `${format(config.instances)} instances, ${config.inFlight} puts in flight, ` +
      `${config.batchesPerCall} batches per storage-engine call, reads of ${format(config.readInstances)} instances; ` +
      `median of ${config.rounds} interleaved round(s); ` +
      `cases capped at ${config.caseSeconds}s${config.quick ? '; QUICK smoke run' : ''}` +
      `${report.filters.length > 0 ? `; filter: ${report.filters.join(' ')}` : ''}.`,
    ...describeOptInWorkloads(config, report.results).flatMap((line) => ['', line]),
    '',
    'Ratios compare rows of this run only (× floor, × lmdb durable writes, × storage engine alone at ' +
      'the same durability; reads × lmdb in the same cache state). The machine is shared, so absolute ' +
      'numbers are noisy; the ratios are what to compare across runs.',
  ];
  if (writes.length > 0) lines.push('', '## Writes', '', markdownTable(WRITE_HEADER, writes.map(writeRow)));
  if (reads.length > 0) lines.push('', '## Reads', '', markdownTable(READ_HEADER, reads.map(readRow)));
  if (opens.length > 0) {
    lines.push('', '## Open in a fresh process', '', markdownTable(OPEN_HEADER, opens.map(openTableRow)));
  }
  const ops = report.results.filter((result) => result.kind === 'ops');
  if (ops.length > 0) {
    lines.push(
      '',
      '## Backup and repartition',
      '',
      'MB/s counts the log bytes (registry, index, data up to the cut); × cp is MB/s over that of ' +
        '`cp -R` of the same bytes followed by `sync -f` (1.00: as fast as cp).',
      '',
      markdownTable(OPS_HEADER, ops.map(opsTableRow)),
    );
  }
  lines.push('', '## Targets', '');
  for (const check of report.targets) {
    const mark = check.met === true ? 'met' : check.met === false ? '**missed**' : 'not measured';
    lines.push(`- ${check.target}: ${check.measured} (${mark})`);
  }
  if (report.failures.length > 0) {
    lines.push('', '## Failed cases', '');
    for (const failure of report.failures) lines.push(`- ${failure.spec}: ${failure.error.split('\n')[0]}`);
  }
  return `${lines.join('\n')}\n`;
}
