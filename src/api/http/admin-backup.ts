import { isAbsolute } from 'node:path';
import { RingStoreError } from '../../errors.js';
import type { BackupOptions, BackupProgress, BackupReport } from '../../storage/backup.js';
import { failureLogLevel, publicError, toRingStoreError } from './http-errors.js';
import { isPlainObject } from './wire.js';

/** A store that can back itself up online (RingStore, StorageEngine). */
export interface BackupCapable {
  backup(to: string, options?: BackupOptions): Promise<BackupReport>;
}

export function canBackup(store: unknown): store is BackupCapable {
  return typeof (store as Partial<BackupCapable> | null)?.backup === 'function';
}

export interface BackupRequest {
  to: string;
  link: boolean;
}

/** Checks the body of a backup request: `{ "to": "/absolute/path", "link": true }`. */
export function parseBackupRequest(body: unknown): BackupRequest {
  if (!isPlainObject(body)) throw new RingStoreError('BAD_REQUEST', 'the body must be { "to": "/path" }');
  const { to, link } = body;
  if (typeof to !== 'string' || !isAbsolute(to)) {
    throw new RingStoreError('BAD_REQUEST', '"to" must be an absolute path on the server');
  }
  if (link !== undefined && typeof link !== 'boolean') {
    throw new RingStoreError('BAD_REQUEST', '"link" must be true or false');
  }
  for (const key of Object.keys(body)) {
    if (key !== 'to' && key !== 'link') throw new RingStoreError('BAD_REQUEST', `unknown field ${key}`);
  }
  return { to, link: link !== false };
}

/** One line of a backup answer (NDJSON): progress lines, then the report or the error. */
export type BackupLine =
  | { progress: BackupProgress }
  | { backup: BackupReport }
  | { error: Record<string, unknown> };

/** Most progress lines per second a backup answer carries. */
const PROGRESS_LINES_PER_SECOND = 10;

/**
 * Runs a backup for a remote caller (the HTTP admin route, the admin socket of `ringstore serve`)
 * and reports it as NDJSON lines through `write`: progress (at most 10 a second), then one
 * `{"backup": report}` or `{"error": {code, message}}` line (a server-side error as the catalog
 * says it, the original to `onError`, for the log). Never throws.
 */
export async function streamBackup(
  store: BackupCapable,
  request: BackupRequest,
  write: (line: string) => void,
  onError?: (err: unknown) => void,
): Promise<void> {
  let last = 0;
  const send = (line: BackupLine) => write(`${JSON.stringify(line)}\n`);
  try {
    const report = await store.backup(request.to, {
      link: request.link,
      onProgress: (progress) => {
        const now = Date.now();
        if (now - last < 1000 / PROGRESS_LINES_PER_SECOND) return;
        last = now;
        send({ progress });
      },
    });
    send({ backup: report });
  } catch (err) {
    const error = toRingStoreError(err);
    // As the routes' error handler: server-side failures are logged, the caller's own are answered.
    if (failureLogLevel(error) !== undefined) onError?.(err);
    send({ error: publicError(error) });
  }
}
