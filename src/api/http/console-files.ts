import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RingStoreError } from '../../errors.js';

/** One static file of the web console, held in memory (the whole console is about 200 KB). */
export interface ConsoleFile {
  body: Buffer;
  contentType: string;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** The `ui` folder of the package, beside `src` (tests) or above `dist/src` (the built package). */
function consoleFolder(): string {
  for (const relative of ['../../../ui', '../../../../ui']) {
    const folder = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(join(folder, 'index.html'))) return folder;
  }
  throw new RingStoreError(
    'INVALID_OPTION',
    'console: the web console files (ui/) are missing from the ringstore package; reinstall it, or turn the console off (console: false, --no-console)',
  );
}

function addFolder(files: Map<string, ConsoleFile>, folder: string, prefix: string): void {
  for (const entry of readdirSync(folder, { withFileTypes: true })) {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) addFolder(files, path, `${prefix}${entry.name}/`);
    else {
      const contentType = CONTENT_TYPES[extname(entry.name)];
      if (contentType) files.set(`${prefix}${entry.name}`, { body: readFileSync(path), contentType });
    }
  }
}

/**
 * The console's files by path below /ui/: the package's `ui` folder, and uPlot (an npm dependency
 * of the package, MIT) under `vendor/`, read from its own dist so nothing is copied or fetched.
 */
export function loadConsoleFiles(): ReadonlyMap<string, ConsoleFile> {
  const files = new Map<string, ConsoleFile>();
  addFolder(files, consoleFolder(), '');
  const require = createRequire(import.meta.url);
  for (const [name, module] of [
    ['vendor/uPlot.esm.js', 'uplot/dist/uPlot.esm.js'],
    ['vendor/uPlot.min.css', 'uplot/dist/uPlot.min.css'],
  ] as const) {
    const contentType = CONTENT_TYPES[extname(name)] as string;
    files.set(name, { body: readFileSync(require.resolve(module)), contentType });
  }
  return files;
}
