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

/**
 * ok: nothing to report; RECOVERABLE: only what a crash leaves (bytes of commits never
 * acknowledged, which the next open moves aside) or damage to derived index files (rebuilt from the
 * log); DAMAGED: synced bytes of the log are damaged.
 */
function status(report: VerifyReport): 'ok' | 'RECOVERABLE' | 'DAMAGED' {
  if (report.problems.some((p) => p.severity === 'corrupt')) return 'DAMAGED';
  return report.ok ? 'ok' : 'RECOVERABLE';
}

function summary(report: VerifyReport): string {
  const lines = [
    `${status(report)}: ${report.domains.length} domains, ${report.indexRecords} index records, ${report.registryRecords} registry records, ${report.events} events, ${report.dataBytes} data bytes checked, ${report.fileBytes} bytes on disk`,
  ];
  for (const d of report.domains) {
    lines.push(
      `  ${d.domain}: ${d.indexRecords} records, ${d.events} events, ${d.dataBytes} data bytes, ${d.fileBytes} file bytes`,
    );
  }
  for (const p of report.problems) {
    const kind =
      p.severity === 'tail'
        ? 'tail (never acknowledged; the next open moves it aside)'
        : p.severity === 'index'
          ? `index file (the log is intact; remove ${p.file.split('/')[0]}/checkpoint and the next open rebuilds it)`
          : 'CORRUPT';
    lines.push(`  ${kind}: ${p.file} at offset ${p.offset}: ${p.reason}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * `ringstore verify --dir DIR [--json]`: checks every record and every event's CRC (read-only).
 * Exit 0 when nothing is wrong or only a crash's unacknowledged tail is there (RECOVERABLE: the
 * next open moves it aside, as recovery does at every open), 1 when synced bytes are damaged.
 */
export async function runVerify(args: readonly string[]): Promise<number> {
  const values = parseDirArgs('verify', args);
  const line = new ProgressLine('verify');
  const report = verifyStore(values.dir, progressReporter(segmentBytes(values.dir), line));
  line.done(`${report.domains.length} domains, ${report.events} events, ${status(report)}`);
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : summary(report));
  return status(report) === 'DAMAGED' ? 1 : 0;
}

export const VERIFY_USAGE = dirUsage(
  'verify',
  'Checks every record and every event CRC of a data directory (read-only). Progress on stderr, the\nsummary on stdout; exit 0 when nothing is wrong or only the unacknowledged tail of a crash is there\n(RECOVERABLE: the next open moves it aside), 1 when synced bytes are damaged (DAMAGED).',
);
