import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import * as http from 'node:http';
import { join } from 'node:path';
import { canBackup, parseBackupRequest, streamBackup } from '../api/http/admin-backup.js';
import { parseJsonSafely, utf8Text } from '../api/http/safe-json.js';
import { fromWire, RingStoreError, type WireError } from '../errors.js';
import type { BackupProgress, BackupReport } from '../storage/backup.js';

/**
 * The local channel between `ringstore backup` and a `ringstore serve` that holds the store: HTTP
 * over a Unix domain socket inside the store directory, `<dir>/.ringstore-admin.sock` (a dot file:
 * not part of the store), mode 0600, so only the server's user — who can read the store's files
 * anyway — may use it, with no token. `POST /backup` with `{ "to": "/abs/path", "link": true }`
 * answers NDJSON lines: progress, then the report or the error (api/http/admin-backup.ts).
 */
export const ADMIN_SOCKET_FILE = '.ringstore-admin.sock';

/** Longest socket path that every platform accepts (sun_path is 104 to 108 bytes). */
const MAX_SOCKET_PATH_BYTES = 100;

const BODY_LIMIT_BYTES = 64 * 1024;

export interface AdminSocket {
  path: string;
  close(): void;
}

interface Logger {
  error(object: object, message: string): void;
  warn(object: object, message: string): void;
  info(object: object, message: string): void;
}

/** Opens the admin socket of a server (undefined when the store cannot back up or the path is too long). */
export async function startAdminSocket(
  dir: string,
  store: unknown,
  log: Logger,
): Promise<AdminSocket | undefined> {
  if (!canBackup(store)) return undefined;
  const path = join(dir, ADMIN_SOCKET_FILE);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    log.warn(
      { path },
      `no admin socket: its path is longer than ${MAX_SOCKET_PATH_BYTES} bytes; back up through POST /v1/admin/backup`,
    );
    return undefined;
  }
  // This process holds the store's lock: a socket file there is a dead server's.
  if (existsSync(path)) unlinkSync(path);
  const server = http.createServer((request, response) => {
    const answer = (status: number, error: RingStoreError) => {
      response.writeHead(status, { 'content-type': 'application/x-ndjson; charset=utf-8' });
      response.end(`${JSON.stringify({ error: error.toWire() })}\n`);
    };
    if (request.method !== 'POST' || request.url !== '/backup') {
      answer(404, new RingStoreError('NOT_FOUND', 'the admin socket answers POST /backup only'));
      return;
    }
    const chunks: Buffer[] = [];
    let bytes = 0;
    request.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      bytes += chunk.byteLength;
      if (bytes > BODY_LIMIT_BYTES) request.destroy();
    });
    request.on('end', () => {
      let backup: ReturnType<typeof parseBackupRequest>;
      try {
        // As every JSON body of the HTTP API: UTF-8 or INVALID_JSON, the same safety checks.
        backup = parseBackupRequest(parseJsonSafely(utf8Text(Buffer.concat(chunks, bytes))));
      } catch (err) {
        answer(400, err instanceof RingStoreError ? err : new RingStoreError('INVALID_JSON'));
        return;
      }
      log.info({ to: backup.to }, 'backup requested on the admin socket');
      response.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8' });
      void streamBackup(
        store,
        backup,
        (line) => response.write(line),
        (err) => log.error({ err }, 'backup failed'),
      ).finally(() => response.end());
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  return {
    path,
    close: () => {
      server.close();
      try {
        unlinkSync(path);
      } catch {
        // Already gone: nothing to clean up.
      }
    },
  };
}

/**
 * Asks the server that holds `dir` for a backup through its admin socket. Resolves 'no-server' when
 * no server answers there (no socket file, or a dead server's).
 */
export function requestServerBackup(
  dir: string,
  to: string,
  link: boolean,
  onProgress: (progress: BackupProgress) => void,
): Promise<BackupReport | 'no-server'> {
  const path = join(dir, ADMIN_SOCKET_FILE);
  if (!existsSync(path)) return Promise.resolve('no-server');
  return new Promise((resolve, reject) => {
    let answered = false;
    const request = http.request(
      { socketPath: path, method: 'POST', path: '/backup', headers: { 'content-type': 'application/json' } },
      (response) => {
        answered = true;
        let pending = '';
        let result: BackupReport | undefined;
        let failure: RingStoreError | undefined;
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          pending += chunk;
          for (let end = pending.indexOf('\n'); end >= 0; end = pending.indexOf('\n')) {
            const line = JSON.parse(pending.slice(0, end)) as {
              progress?: BackupProgress;
              backup?: BackupReport;
              error?: WireError;
            };
            pending = pending.slice(end + 1);
            if (line.progress) onProgress(line.progress);
            if (line.backup) result = line.backup;
            if (line.error) failure = fromWire(line.error);
          }
        });
        response.on('end', () => {
          if (result) resolve(result);
          else
            reject(
              failure ?? new RingStoreError('INTERNAL', 'the server ended the backup without an answer'),
            );
        });
        response.on('error', reject);
      },
    );
    request.on('error', (err: NodeJS.ErrnoException) => {
      if (!answered && (err.code === 'ECONNREFUSED' || err.code === 'ENOENT')) resolve('no-server');
      else reject(err);
    });
    request.end(JSON.stringify({ to, link }));
  });
}
