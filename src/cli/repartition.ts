import { readFileSync } from 'node:fs';
import { RingStoreError } from '../errors.js';
import { parseRepartitionPlan } from '../model/repartition-plan.js';
import {
  type RepartitionProgress,
  type RepartitionReport,
  repartitionStore,
} from '../storage/repartition.js';
import { parseOptions } from './args.js';
import { ProgressLine } from './progress.js';
import { checkStoreDirectory } from './store-dir.js';

export const REPARTITION_USAGE = `usage: ringstore repartition --from DIR --to NEWDIR --plan PLAN.json [--dry-run] [--json]

Writes a new store NEWDIR from the store in DIR following a plan: rename or merge domains, move
aggregate types to other domains (a split), drop domains, aggregate types or instances (erasure
requests). The only way ringstore deletes events. DIR must not be held by any process and is never
changed; NEWDIR must not exist. In NEWDIR each domain's positions start again from 0; versions,
idempotency keys, generations and timestamps are kept. NEWDIR is marked INCOMPLETE (every open
refuses it) until it is written, synced and verified. Prints a report of counts per domain.

plan (every key optional; names are those of DIR):
  { "renameDomains": { "shop": "retail" },
    "moveAggregateTypes": [{ "domain": "shop", "aggregateType": "invoice", "to": "billing" }],
    "drop": { "domains": ["scratch"],
              "aggregateTypes": [{ "domain": "shop", "aggregateType": "cart" }],
              "instances": [{ "domain": "crm", "aggregateType": "person", "id": "17" }] } }

options:
  --from DIR        the source store (required; no process may hold it)
  --to NEWDIR       the new store (required; must not exist; outside DIR)
  --plan FILE       the plan, a JSON file (required)
  --dry-run         check the plan and print what would change; write nothing
  --json            print the report as JSON
  -h, --help        show this help
`;

function readPlan(path: string) {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new RingStoreError(
      'INVALID_OPTION',
      `--plan ${path} cannot be read (${(err as NodeJS.ErrnoException).code})`,
      {
        option: 'plan',
      },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new RingStoreError('INVALID_PLAN', `the repartition plan ${path} is not valid JSON`, {
      reason: 'json',
    });
  }
  return parseRepartitionPlan(json);
}

function summary(report: RepartitionReport): string {
  const lines = [
    `${report.dryRun ? 'dry run: would write' : 'wrote'} ${report.to} from ${report.from}: ${report.targets.length} domains, ${report.targets.reduce((n, t) => n + t.events, 0)} events`,
  ];
  for (const t of report.targets) {
    lines.push(
      `  ${t.domain} ← ${t.from.join(', ')}: ${t.events} events in ${t.batches} batches (aggregate types ${t.aggregateTypes.join(', ')})`,
    );
  }
  for (const s of report.sources) {
    if (s.droppedEvents > 0)
      lines.push(`  dropped from ${s.domain}: ${s.droppedEvents} events in ${s.droppedBatches} batches`);
  }
  return `${lines.join('\n')}\n`;
}

function describeProgress(line: ProgressLine): (progress: RepartitionProgress) => void {
  return (p) => {
    const fraction = p.total === 0 ? 0 : p.done / p.total;
    // scan: an unknown share; write: most of the work; verify: the rest.
    const overall = p.phase === 'scan' ? 0 : p.phase === 'write' ? fraction * 0.7 : 0.7 + fraction * 0.3;
    line.update(overall, `${p.phase}: ${p.done}${p.total > 0 ? ` of ${p.total}` : ''} batches`);
  };
}

/** `ringstore repartition --from DIR --to NEWDIR --plan PLAN.json [--dry-run]`. */
export async function runRepartition(args: readonly string[]): Promise<number> {
  const values = parseOptions('repartition', args, {
    from: { type: 'string' },
    to: { type: 'string' },
    plan: { type: 'string' },
    'dry-run': { type: 'boolean' },
    json: { type: 'boolean' },
  });
  for (const flag of ['from', 'to', 'plan'] as const) {
    if (typeof values[flag] !== 'string' || values[flag] === '') {
      throw new RingStoreError(
        'INVALID_OPTION',
        `repartition needs --from DIR, --to NEWDIR and --plan FILE (see ringstore repartition --help)`,
        { option: flag },
      );
    }
  }
  const from = values.from as string;
  checkStoreDirectory(from, { mayCreate: false });
  const plan = readPlan(values.plan as string);
  const line = new ProgressLine('repartition');
  const report = repartitionStore(from, values.to as string, plan, {
    dryRun: values['dry-run'] === true,
    onProgress: describeProgress(line),
  });
  line.done(report.dryRun ? 'dry run' : 'verified');
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : summary(report));
  return 0;
}
