import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The package's version, from the package.json above this file (src/api or dist/src/api). */
export function packageVersion(): string {
  for (const relative of ['../../package.json', '../../../package.json']) {
    try {
      const manifest = JSON.parse(
        readFileSync(fileURLToPath(new URL(relative, import.meta.url)), 'utf8'),
      ) as {
        name?: string;
        version?: string;
      };
      if (manifest.name === 'ringstore' && manifest.version) return manifest.version;
    } catch {
      // not at this level: try the next one
    }
  }
  return 'unknown';
}
