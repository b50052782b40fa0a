import { readdir, stat } from 'node:fs/promises';
import { domainDir, joinPath } from './format.js';

/**
 * Bytes a domain's folder occupies: the sizes of its files added up (index files, quarantined cuts
 * and the preallocated tails of segments included), as `du --apparent-size` counts them. It only
 * stats files, never reads them, so it is safe beside the writer; a file removed meanwhile (a run
 * replaced by a merge) is skipped. A domain without a folder occupies 0 bytes.
 */
export async function domainDiskBytes(root: string, domain: string): Promise<number> {
  const folder = domainDir(root, domain);
  let names: string[];
  try {
    names = await readdir(folder);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  const sizes = await Promise.all(
    names.map(async (name) => {
      try {
        const info = await stat(joinPath(folder, name));
        return info.isFile() ? info.size : 0;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
        throw err;
      }
    }),
  );
  return sizes.reduce((sum, size) => sum + size, 0);
}
