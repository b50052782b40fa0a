import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Bytes a directory tree takes on disk (allocated blocks, so preallocated extents count). */
export function storeBytes(dir: string): number {
  let bytes = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    bytes += entry.isDirectory() ? storeBytes(path) : lstatSync(path).blocks * 512;
  }
  return bytes;
}

/** A store size as the row ids name it: 1M, 10M, 1.5M, 20k, or the plain number. */
export function sizeLabel(events: number): string {
  if (events >= 1_000_000 && events % 100_000 === 0) return `${events / 1_000_000}M`;
  if (events >= 1_000 && events % 100 === 0) return `${events / 1_000}k`;
  return String(events);
}
