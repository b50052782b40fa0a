import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { STORAGE_NAME_PATTERN } from '../model/names.js';
import { INDEX_FILE, REGISTRY_FILE } from '../storage/format.js';

/** Payload bytes a full pass reads: the data segments of every domain (everything but index and registry). */
export function segmentBytes(dir: string): number {
  let total = 0;
  for (const domain of readdirSync(dir)) {
    const path = join(dir, domain);
    if (!STORAGE_NAME_PATTERN.test(domain) || !statSync(path).isDirectory()) continue;
    for (const file of readdirSync(path)) {
      if (file === INDEX_FILE || file === REGISTRY_FILE) continue;
      const stat = statSync(join(path, file));
      if (stat.isFile()) total += stat.size;
    }
  }
  return total;
}

function bar(fraction: number, width = 24): string {
  const clamped = Math.min(1, Math.max(0, fraction));
  const filled = Math.round(clamped * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(clamped * 100).toFixed(0).padStart(3)}%`;
}

export interface ProgressStream {
  isTTY?: boolean;
  write(text: string): unknown;
}

/**
 * A progress line on stderr for the offline commands: a terminal gets one line redrawn (at most
 * every 100 ms); a pipe or a log file gets a line at most every second, and always a last line at
 * 100 % when the command finished, so a log shows that it did.
 */
export class ProgressLine {
  readonly #label: string;
  readonly #stream: ProgressStream;
  readonly #tty: boolean;
  #lastDraw = 0;

  constructor(label: string, stream: ProgressStream = process.stderr) {
    this.#label = label;
    this.#stream = stream;
    this.#tty = stream.isTTY === true;
  }

  /** Reports `fraction` (0…1) done; shown below 100 % until done() since the total is an estimate. */
  update(fraction: number, detail: string): void {
    const now = Date.now();
    if (now - this.#lastDraw < (this.#tty ? 100 : 1000)) return;
    this.#lastDraw = now;
    this.#draw(Math.min(fraction, 0.99), detail);
  }

  done(detail: string): void {
    this.#draw(1, detail);
    if (this.#tty) this.#stream.write('\n');
  }

  #draw(fraction: number, detail: string): void {
    const line = `${this.#label} ${bar(fraction)} ${detail}`;
    this.#stream.write(this.#tty ? `\r${line}\x1b[K` : `${line}\n`);
  }
}
