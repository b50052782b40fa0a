import { resolve } from 'node:path';
import { RingStoreError } from '../errors.js';
import type { BackupProgress, BackupReport } from '../storage/backup.js';
import { StorageEngine } from '../storage/storage-engine.js';
import { requestServerBackup } from './admin-socket.js';
import { parseOptions } from './args.js';
import { ProgressLine } from './progress.js';
import { checkStoreDirectory } from './store-dir.js';

export const BACKUP_USAGE = `usage: ringstore backup --dir DIR --to NEWDIR [--no-link] [--json]

Copies the store in DIR into the new directory NEWDIR, consistent at one generation: every batch of
the generations up to the cut, whole, and nothing after. Writes go on meanwhile. When a
'ringstore serve' holds DIR, the server takes the backup (asked through its admin socket,
DIR/.ringstore-admin.sock); otherwise this command opens the store itself (recovery runs, as at any
open) and holds it while it copies. Sealed data segments are hard-linked when NEWDIR is on the same
file system (--no-link copies them); the index files are not copied: the backup's first open
rebuilds them from its log. Restore: open NEWDIR as a store (or copy it back). Progress on stderr.

options:
  --dir DIR       the store to back up (required)
  --to NEWDIR     the backup's directory (required; must not exist; outside DIR)
  --no-link       copy sealed segments instead of hard-linking them
  --json          print the report as JSON
  -h, --help      show this help
`;

function describeProgress(line: ProgressLine): (progress: BackupProgress) => void {
  return (p) =>
    line.update(
      p.bytesTotal === 0 ? 1 : p.bytesDone / p.bytesTotal,
      `${p.filesDone}/${p.filesTotal} files, ${p.bytesDone} of ${p.bytesTotal} bytes`,
    );
}

/** `ringstore backup --dir DIR --to NEWDIR`: through the server that holds DIR, or on its own. */
export async function runBackup(args: readonly string[]): Promise<number> {
  const values = parseOptions('backup', args, {
    dir: { type: 'string' },
    to: { type: 'string' },
    'no-link': { type: 'boolean' },
    json: { type: 'boolean' },
  });
  if (
    typeof values.dir !== 'string' ||
    values.dir === '' ||
    typeof values.to !== 'string' ||
    values.to === ''
  ) {
    throw new RingStoreError(
      'INVALID_OPTION',
      'backup needs --dir DIR and --to NEWDIR (see ringstore backup --help)',
    );
  }
  checkStoreDirectory(values.dir, { mayCreate: false });
  const to = resolve(values.to);
  const link = values['no-link'] !== true;
  const line = new ProgressLine('backup');
  const onProgress = describeProgress(line);
  let takenBy = 'the server';
  let report: BackupReport | 'no-server' = await requestServerBackup(values.dir, to, link, onProgress);
  if (report === 'no-server') {
    takenBy = 'this command';
    report = await backupOnItsOwn(values.dir, to, link, onProgress);
  }
  line.done(`generation ${report.generation}`);
  process.stdout.write(
    values.json
      ? `${JSON.stringify({ ...report, takenBy }, null, 2)}\n`
      : `backup of ${values.dir} at generation ${report.generation} into ${report.to} (taken by ${takenBy}): ${report.domains} domains, ${report.events} events; ${report.linkedFiles} files linked (${report.linkedBytes} bytes), ${report.copiedFiles} files copied (${report.copiedBytes} bytes)\n`,
  );
  return 0;
}

async function backupOnItsOwn(
  dir: string,
  to: string,
  link: boolean,
  onProgress: (progress: BackupProgress) => void,
): Promise<BackupReport> {
  let engine: StorageEngine;
  try {
    engine = StorageEngine.open(dir);
  } catch (err) {
    if (err instanceof RingStoreError && err.code === 'STORE_LOCKED') {
      throw new RingStoreError(
        'STORE_LOCKED',
        `${err.message}, which offers no admin socket: back it up from inside that process (store.backup(to)) or through its POST /v1/admin/backup`,
        err.details,
      );
    }
    throw err;
  }
  try {
    return await engine.backup(to, { link, onProgress });
  } finally {
    await engine.close();
  }
}
