import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LIMITS } from '../model/limits.js';
import { validateReadOptions } from '../model/queries.js';
import { StorageReader } from '../storage/reader.js';
import { dirUsage, parseDirArgs } from './dir-args.js';
import { ProgressLine, segmentBytes } from './progress.js';

export interface DomainSummary {
  domain: string;
  events: number;
  instances: number;
  dataBytes: number;
  generations: { first: number; last: number } | undefined;
  time: { first: number; last: number } | undefined;
  aggregateTypes: Record<string, { events: number; instances: number }>;
  eventTypes: Record<string, number>;
  files: Record<string, number>;
}

/** Called after each page read: the domain, and the event data bytes summed so far over all domains. */
export type InspectProgress = (domain: string, dataBytes: number) => void;

/** Reads a whole store directory through StorageReader (read-only, no recovery) and sums it up. */
export function inspectStore(dir: string, onProgress?: InspectProgress): DomainSummary[] {
  const reader = StorageReader.open(dir);
  try {
    let before = 0;
    return reader.domains().map((domain) => {
      const summary = summarise(reader, dir, domain, (bytes) => onProgress?.(domain, before + bytes));
      before += summary.dataBytes;
      return summary;
    });
  } finally {
    reader.close();
  }
}

function summarise(
  reader: StorageReader,
  dir: string,
  domain: string,
  onPage: (dataBytes: number) => void,
): DomainSummary {
  const summary: DomainSummary = {
    domain,
    events: 0,
    instances: 0,
    dataBytes: 0,
    generations: undefined,
    time: undefined,
    aggregateTypes: {},
    eventTypes: {},
    files: {},
  };
  const instances = new Map<string, Set<bigint>>();
  let fromPosition = 0;
  for (;;) {
    const page = reader.read(domain, validateReadOptions({ fromPosition, limit: LIMITS.maxReadLimit }));
    for (const event of page.events) {
      summary.events++;
      summary.dataBytes += event.data.byteLength;
      summary.eventTypes[event.type] = (summary.eventTypes[event.type] ?? 0) + 1;
      let perType = summary.aggregateTypes[event.aggregateType];
      if (!perType) {
        perType = { events: 0, instances: 0 };
        summary.aggregateTypes[event.aggregateType] = perType;
      }
      perType.events++;
      let ids = instances.get(event.aggregateType);
      if (!ids) {
        ids = new Set();
        instances.set(event.aggregateType, ids);
      }
      ids.add(event.aggregateId);
      summary.generations = {
        first: summary.generations?.first ?? event.generation,
        last: event.generation,
      };
      summary.time = { first: summary.time?.first ?? event.timestamp, last: event.timestamp };
    }
    onPage(summary.dataBytes);
    if (page.events.length === 0 || page.nextPosition === fromPosition) break;
    fromPosition = page.nextPosition;
  }
  for (const [type, ids] of instances) {
    (summary.aggregateTypes[type] as { instances: number }).instances = ids.size;
    summary.instances += ids.size;
  }
  for (const name of readdirSync(join(dir, domain)).sort()) {
    const stat = statSync(join(dir, domain, name));
    if (stat.isFile()) summary.files[name] = stat.size;
  }
  return summary;
}

function render(summaries: readonly DomainSummary[]): string {
  if (summaries.length === 0) return 'no domains\n';
  const out: string[] = [];
  for (const s of summaries) {
    const fileBytes = Object.values(s.files).reduce((a, b) => a + b, 0);
    out.push(
      `domain ${s.domain}: ${s.events} events, ${s.instances} instances, ${s.dataBytes} data bytes, ${fileBytes} bytes on disk`,
    );
    if (s.generations && s.time) {
      out.push(
        `  generations ${s.generations.first}…${s.generations.last}, time ${new Date(s.time.first).toISOString()} … ${new Date(s.time.last).toISOString()}`,
      );
    }
    for (const [type, t] of Object.entries(s.aggregateTypes)) {
      out.push(`  aggregate type ${type}: ${t.events} events, ${t.instances} instances`);
    }
    for (const [type, count] of Object.entries(s.eventTypes)) out.push(`  event type ${type}: ${count}`);
    for (const [file, size] of Object.entries(s.files)) out.push(`  file ${file}: ${size} bytes`);
  }
  return `${out.join('\n')}\n`;
}

/** `ringstore inspect --dir DIR [--json]` */
export async function runInspect(args: readonly string[]): Promise<number> {
  const values = parseDirArgs('inspect', args);
  const line = new ProgressLine('inspect');
  // Event data bytes against segment bytes (which add headers): an estimate, so it ends at done().
  const total = segmentBytes(values.dir);
  const summaries = inspectStore(values.dir, (domain, dataBytes) =>
    line.update(total === 0 ? 1 : dataBytes / total, `domain ${domain}`),
  );
  const events = summaries.reduce((sum, s) => sum + s.events, 0);
  line.done(`${summaries.length} domains, ${events} events`);
  process.stdout.write(values.json ? `${JSON.stringify(summaries, null, 2)}\n` : render(summaries));
  return 0;
}

export const INSPECT_USAGE = dirUsage(
  'inspect',
  'Lists domains, aggregate types, event types, counts and sizes of a data directory. Read-only: it\nruns no recovery, so run it on a copy or while the server is stopped for exact figures.',
);
