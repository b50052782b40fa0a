import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { RingStoreError } from '../errors.js';
import { STORAGE_NAME_PATTERN } from '../model/names.js';
import { type VerifyProgress, type VerifyReport, verifyStore } from '../storage/verify.js';
import { parseDirArgs } from './dir-args.js';

/** Payload bytes a full verify will read: the data segments (everything but index and registry). */
function segmentBytes(dir: string): number {
  let total = 0;
  for (const domain of readdirSync(dir)) {
    const path = join(dir, domain);
    if (!STORAGE_NAME_PATTERN.test(domain) || !statSync(path).isDirectory()) continue;
    for (const file of readdirSync(path)) {
      if (file === 'index' || file === 'registry') continue;
      const stat = statSync(join(path, file));
      if (stat.isFile()) total += stat.size;
    }
  }
  return total;
}

function bar(fraction: number, width = 24): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(Math.min(1, fraction) * 100).toFixed(0).padStart(3)}%`;
}

/** Draws a progress line on stderr (a terminal gets one line redrawn; a pipe gets a line per second). */
function progressPrinter(totalBytes: number): (progress: VerifyProgress) => void {
  let doneDomainsBytes = 0;
  let currentDomain = '';
  let currentBytes = 0;
  let lastDraw = 0;
  const tty = process.stderr.isTTY === true;
  return (progress) => {
    if (progress.domain !== currentDomain) {
      doneDomainsBytes += currentBytes;
      currentDomain = progress.domain;
    }
    currentBytes = progress.dataBytes;
    const now = Date.now();
    if (now - lastDraw < (tty ? 100 : 1000)) return;
    lastDraw = now;
    const checked = doneDomainsBytes + currentBytes;
    const line = `verify ${bar(totalBytes === 0 ? 1 : checked / totalBytes)} domain ${progress.domain}: ${progress.indexRecords} records, ${progress.events} events`;
    process.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
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
  const dir = values.dir;
  let total: number;
  try {
    total = segmentBytes(dir);
  } catch {
    throw new RingStoreError('INVALID_OPTION', `cannot read the store directory ${dir}`);
  }
  const report = verifyStore(dir, progressPrinter(total));
  if (process.stderr.isTTY) process.stderr.write('\n');
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : summary(report));
  return report.ok ? 0 : 1;
}
