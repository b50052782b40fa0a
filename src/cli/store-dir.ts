import { type Dirent, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { RingStoreError } from '../errors.js';
import { STORAGE_NAME_PATTERN } from '../model/names.js';
import { INCOMPLETE_FILE } from '../storage/build-marker.js';
import { INDEX_FILE, REGISTRY_FILE } from '../storage/format.js';

/**
 * Entries a store directory may hold besides domain folders: the lock, the marker of a store a tool
 * has not finished (the open refuses that one with STORE_INCOMPLETE), a filesystem's lost+found,
 * dot files (the admin socket of a server among them).
 */
function ignorable(name: string): boolean {
  return name === 'LOCK' || name === INCOMPLETE_FILE || name === 'lost+found' || name.startsWith('.');
}

function invalidDir(dir: string, why: string): RingStoreError {
  return new RingStoreError('INVALID_OPTION', `--dir ${dir} ${why}`, { option: 'dir' });
}

/**
 * Checks that `dir` is a ringstore data directory before a command reads (or serves) it, without
 * creating or changing anything. The store writes no marker file, so a directory counts as a store
 * when it is empty (a new store: only `serve` may create a missing one) or when it has domain
 * folders (allowed names) that each hold a `registry` or an `index` file (or nothing yet: a domain
 * whose first commit was cut short) and nothing else of its own. A file, a folder of other things
 * or a folder whose sub-folders are not domains is refused with INVALID_OPTION naming the reason.
 */
export function checkStoreDirectory(dir: string, options: { mayCreate: boolean }): void {
  let entries: Dirent[];
  try {
    if (!statSync(dir).isDirectory()) throw invalidDir(dir, 'is a file, not a directory');
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    if (err instanceof RingStoreError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && options.mayCreate) return;
    if (code === 'ENOENT') throw invalidDir(dir, 'does not exist');
    if (code === 'ENOTDIR') throw invalidDir(dir, 'is inside a file, not a directory');
    throw invalidDir(dir, `cannot be read (${code ?? (err as Error).message})`);
  }
  const own = entries.filter((entry) => !ignorable(entry.name));
  if (own.length === 0) return;
  const strangers = own.filter((entry) => !entry.isDirectory() || !STORAGE_NAME_PATTERN.test(entry.name));
  const notDomains = own
    .filter((entry) => entry.isDirectory() && STORAGE_NAME_PATTERN.test(entry.name))
    .filter((entry) => !looksLikeDomain(join(dir, entry.name)));
  if (strangers.length === 0 && notDomains.length === 0) return;
  const example = (strangers[0] ?? notDomains[0]) as Dirent;
  const what = notDomains.includes(example)
    ? `folder ${example.name} has no ${REGISTRY_FILE} or ${INDEX_FILE} file`
    : `${example.isDirectory() ? 'folder' : 'file'} ${JSON.stringify(example.name)} is not a domain folder`;
  throw invalidDir(dir, `is not a ringstore data directory (${what})`);
}

function looksLikeDomain(folder: string): boolean {
  let names: string[];
  try {
    names = readdirSync(folder);
  } catch {
    return false;
  }
  return names.length === 0 || names.includes(REGISTRY_FILE) || names.includes(INDEX_FILE);
}
