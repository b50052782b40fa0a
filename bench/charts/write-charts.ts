import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Writes `<dir>/<base>-<suffix>.svg` for each chart and removes the `<base>-<word>.svg` charts of an
 * earlier run that this run did not draw, so no chart beside a results file tells of another run.
 * Returns the paths written.
 */
export function writeCharts(dir: string, base: string, charts: ReadonlyMap<string, string>): string[] {
  const ours = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-([a-z]+)\\.svg$`);
  for (const name of readdirSync(dir)) {
    const suffix = ours.exec(name)?.[1];
    if (suffix !== undefined && !charts.has(suffix)) rmSync(join(dir, name));
  }
  const written: string[] = [];
  for (const [suffix, svg] of charts) {
    const path = join(dir, `${base}-${suffix}.svg`);
    writeFileSync(path, svg);
    written.push(path);
  }
  return written;
}
