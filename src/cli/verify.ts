import { type VerifyProgress, type VerifyReport, verifyStore } from '../storage/verify.js';
import { dirUsage, parseDirArgs } from './dir-args.js';
import { ProgressLine, segmentBytes } from './progress.js';

/** Feeds verifyStore's progress (per domain) into one progress line over all domains' data bytes. */
function progressReporter(totalBytes: number, line: ProgressLine): (progress: VerifyProgress) => void {
  let doneDomainsBytes = 0;
  let currentDomain = '';
  let currentBytes = 0;
  return (progress) => {
    if (progress.domain !== currentDomain) {
      doneDomainsBytes += currentBytes;
      currentDomain = progress.domain;
    }
    currentBytes = progress.dataBytes;
    const checked = doneDomainsBytes + currentBytes;
    line.update(
      totalBytes === 0 ? 1 : checked / totalBytes,
      `domain ${progress.domain}: ${progress.indexRecords} records, ${progress.events} events`,
    );
  };
}

function summary(report: VerifyReport): string {
  const lines = [
    `${report.ok ? 'ok' : 'DAMAGED'}: ${report.domains.length} domains, ${report.indexRecords} index records, ${report.registryRecords} registry records, ${report.events} events, ${report.dataBytes} data bytes checked, ${report.fileBytes} bytes on disk`,
  ];
  for (const d of report.domains) {
    lines.push(
      `  ${d.domain}: ${d.indexRecords} records, ${d.events} events, ${d.dataBytes} data bytes, ${d.fileBytes} file bytes`,
    );
  }
  for (const p of report.problems) {
    const kind = p.severity === 'tail' ? 'tail (recovery cuts it on the next open)' : 'CORRUPT';
    lines.push(`  ${kind}: ${p.file} at offset ${p.offset}: ${p.reason}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * `ringstore verify --dir DIR [--json]`: checks every record and every event's CRC (read-only).
 * Exit 0 when nothing is wrong, 1 when anything is damaged (a torn tail included: it means the
 * store was not closed cleanly and the next open will cut it).
 */
export async function runVerify(args: readonly string[]): Promise<number> {
  const values = parseDirArgs('verify', args);
  const line = new ProgressLine('verify');
  const report = verifyStore(values.dir, progressReporter(segmentBytes(values.dir), line));
  line.done(`${report.domains.length} domains, ${report.events} events, ${report.ok ? 'ok' : 'DAMAGED'}`);
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : summary(report));
  return report.ok ? 0 : 1;
}

export const VERIFY_USAGE = dirUsage(
  'verify',
  'Checks every record and every event CRC of a data directory (read-only). Progress on stderr, the\nsummary on stdout; exit 0 when nothing is wrong, 1 when anything is damaged (a torn tail included).',
);
