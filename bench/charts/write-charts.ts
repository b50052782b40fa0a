import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Writes `<dir>/<base>-<suffix>.svg` for each chart; returns the paths written. */
export function writeCharts(dir: string, base: string, charts: ReadonlyMap<string, string>): string[] {
  const written: string[] = [];
  for (const [suffix, svg] of charts) {
    const path = join(dir, `${base}-${suffix}.svg`);
    writeFileSync(path, svg);
    written.push(path);
  }
  return written;
}
