import { constants as fsConstants, lstatSync, mkdirSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { RingStoreError } from '../errors.js';
import { rejectUnknownOptions } from '../model/known-options.js';
import { removeIncompleteMarker, writeIncompleteMarker } from './build-marker.js';
import { isUnusablePath, realFileIO } from './file-io.js';
import { INDEX_FILE, joinPath, REGISTRY_FILE, segmentFileName } from './format.js';
import type { LogCut } from './log-cut.js';
import { SEGMENT_HEADER_BYTES } from './segment-header.js';

/**
 * Online backup (docs/OPERATIONS.md, "Backup and restore"): copies a store's log up to a consistent
 * cut (StorageWriter.cut) into a new directory while the store goes on appending past it.
 *
 *   cut      the writer's ends after its last commit, generation G (taken on the writer's side)
 *   target   must not exist; created with its INCOMPLETE marker first (build-marker.ts)
 *   copy     per domain: registry [0, registryEnd), index [0, indexEnd); per aggregate type its
 *            sealed segments (below the one it appends to) hard-linked — they are never written
 *            again — or copied whole where a link is not possible (another file system), and the
 *            segment it appends to copied up to its data end; each copy fsynced, then the folders
 *   finish   the marker removed: the target is a store
 *
 * Only the log is copied: the index files (checkpoint, positions, runs) are derived from it, and
 * the first open of the backup rebuilds them (reading its index once). The bytes below the cut
 * never change while the store runs (files only grow past their ends, sealed segments are never
 * written), so the copy needs no lock on the store: it is exactly the batches of generations ≤ G.
 */
export interface BackupOptions {
  /** Hard-link sealed segments when the target is on the same file system (default true). */
  link?: boolean;
  onProgress?: (progress: BackupProgress) => void;
}

const BACKUP_OPTIONS: ReadonlySet<string> = new Set(['link', 'onProgress']);

/** Checks the options of a backup (INVALID_OPTION naming the one that is wrong). */
export function validateBackupOptions(options: unknown): BackupOptions {
  rejectUnknownOptions(options, BACKUP_OPTIONS, 'INVALID_OPTION', 'backup option');
  const { link, onProgress } = options as BackupOptions;
  if (link !== undefined && typeof link !== 'boolean') {
    throw new RingStoreError('INVALID_OPTION', 'link must be true or false', { option: 'link' });
  }
  if (onProgress !== undefined && typeof onProgress !== 'function') {
    throw new RingStoreError('INVALID_OPTION', 'onProgress must be a function', { option: 'onProgress' });
  }
  return options as BackupOptions;
}

export interface BackupProgress {
  bytesDone: number;
  bytesTotal: number;
  filesDone: number;
  filesTotal: number;
}

export interface BackupReport {
  /** The backup's directory. */
  to: string;
  /** The cut: the backup holds every batch of generations ≤ generation, and nothing after. */
  generation: number;
  lastTimestamp: number;
  domains: number;
  events: number;
  linkedFiles: number;
  linkedBytes: number;
  copiedFiles: number;
  copiedBytes: number;
}

interface PlannedFile {
  folder: string;
  name: string;
  /** Bytes to copy from the start; undefined: the whole file, hard-linked where possible. */
  length: number | undefined;
  bytes: number;
}

const COPY_CHUNK_BYTES = 1024 * 1024;

/**
 * Refuses a target inside the store directory (it would become a domain folder of the store) or a
 * store inside the target, and a target that is not a path at all.
 */
export function refuseNestedTarget(from: string, to: unknown): void {
  if (typeof to !== 'string' || to.length === 0 || to.includes('\0')) {
    throw new RingStoreError('INVALID_OPTION', 'the target must be a path: a non-empty string without NUL', {
      option: 'to',
    });
  }
  const inside = (outer: string, inner: string) => {
    const path = relative(resolve(outer), resolve(inner));
    return path === '' || (!path.startsWith('..') && !isAbsolute(path));
  };
  if (inside(from, to) || inside(to, from)) {
    throw new RingStoreError('INVALID_OPTION', `the target ${to} must lie outside the store ${from}`, {
      option: 'to',
    });
  }
}

/** Refuses a target that exists (TARGET_EXISTS): a backup or repartition never writes over anything. */
export function refuseExistingTarget(to: string): void {
  try {
    lstatSync(to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw unusableTarget(to, err);
  }
  throw new RingStoreError('TARGET_EXISTS', `the target ${to} already exists; name a new directory`, {
    target: to,
  });
}

/** A target the system refuses to create, as INVALID_OPTION naming it; other errors as they are. */
function unusableTarget(to: string, err: unknown): unknown {
  if (!isUnusablePath(err)) return err;
  const { code } = err as NodeJS.ErrnoException;
  return new RingStoreError(
    'INVALID_OPTION',
    `the target ${to} cannot be created as a new directory (${code})`,
    {
      option: 'to',
    },
  );
}

/**
 * Creates the target directory (its parents too), which must not exist, with its INCOMPLETE
 * marker, and makes both durable.
 */
export function createTarget(to: string, note: string): void {
  refuseExistingTarget(to);
  try {
    mkdirSync(dirname(to), { recursive: true });
    mkdirSync(to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') refuseExistingTarget(to);
    throw unusableTarget(to, err);
  }
  realFileIO.fsyncDir(dirname(to));
  writeIncompleteMarker(realFileIO, to, note);
}

/** Copies the log of the store in `from` up to `cut` into the new directory `to` (see above). */
export async function writeBackup(
  from: string,
  cut: LogCut,
  to: string,
  options: BackupOptions = {},
): Promise<BackupReport> {
  const link = options.link ?? true;
  const report: BackupReport = {
    to,
    generation: cut.generation,
    lastTimestamp: cut.lastTimestamp,
    domains: cut.domains.length,
    events: 0,
    linkedFiles: 0,
    linkedBytes: 0,
    copiedFiles: 0,
    copiedBytes: 0,
  };
  createTarget(to, `ringstore backup of ${from} at generation ${cut.generation}`);
  const files = await planFiles(from, cut);
  const progress: BackupProgress = {
    bytesDone: 0,
    bytesTotal: files.reduce((sum, f) => sum + f.bytes, 0),
    filesDone: 0,
    filesTotal: files.length,
  };
  options.onProgress?.({ ...progress });
  for (const domain of cut.domains) {
    report.events += domain.nextPosition;
    await fs.mkdir(joinPath(to, domain.domain));
  }
  realFileIO.fsyncDir(to);
  for (const file of files) {
    const source = joinPath(joinPath(from, file.folder), file.name);
    const target = joinPath(joinPath(to, file.folder), file.name);
    if (file.length === undefined && link && (await tryLink(source, target))) {
      report.linkedFiles++;
      report.linkedBytes += file.bytes;
      progress.bytesDone += file.bytes;
    } else {
      await copyPrefix(source, target, file.length, (bytes) => {
        progress.bytesDone += bytes;
        options.onProgress?.({ ...progress });
      });
      report.copiedFiles++;
      report.copiedBytes += file.bytes;
    }
    progress.filesDone++;
    options.onProgress?.({ ...progress });
  }
  for (const domain of cut.domains) realFileIO.fsyncDir(joinPath(to, domain.domain));
  removeIncompleteMarker(realFileIO, to);
  return report;
}

/** The files of the cut, with the bytes each contributes. */
async function planFiles(from: string, cut: LogCut): Promise<PlannedFile[]> {
  const files: PlannedFile[] = [];
  for (const domain of cut.domains) {
    const folder = domain.domain;
    if (domain.registryEnd > 0) {
      files.push({ folder, name: REGISTRY_FILE, length: domain.registryEnd, bytes: domain.registryEnd });
    }
    if (domain.indexEnd > 0) {
      files.push({ folder, name: INDEX_FILE, length: domain.indexEnd, bytes: domain.indexEnd });
    }
    for (const data of domain.dataEnds) {
      for (let segment = 0; segment < data.segment; segment++) {
        const name = segmentFileName(data.aggregateType, segment);
        const stat = await fs.stat(joinPath(joinPath(from, folder), name));
        files.push({ folder, name, length: undefined, bytes: stat.size });
      }
      if (data.end > SEGMENT_HEADER_BYTES) {
        const name = segmentFileName(data.aggregateType, data.segment);
        files.push({ folder, name, length: data.end, bytes: data.end });
      }
    }
  }
  return files;
}

/** Hard-links `source` as `target`; false when the file system cannot (the caller copies instead). */
async function tryLink(source: string, target: string): Promise<boolean> {
  try {
    await fs.link(source, target);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (
      code === 'EXDEV' ||
      code === 'EPERM' ||
      code === 'ENOTSUP' ||
      code === 'EOPNOTSUPP' ||
      code === 'EMLINK'
    )
      return false;
    throw err;
  }
}

/** Copies the first `length` bytes of `source` (all of it when undefined) into a new file, fsynced. */
async function copyPrefix(
  source: string,
  target: string,
  length: number | undefined,
  onBytes: (bytes: number) => void,
): Promise<void> {
  const input = await fs.open(source, 'r');
  try {
    const output = await fs.open(
      target,
      fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL,
      0o644,
    );
    try {
      const total = length ?? (await input.stat()).size;
      const buffer = Buffer.allocUnsafe(Math.min(COPY_CHUNK_BYTES, Math.max(total, 1)));
      let done = 0;
      while (done < total) {
        const want = Math.min(buffer.byteLength, total - done);
        const { bytesRead } = await input.read(buffer, 0, want, done);
        if (bytesRead === 0) {
          throw new RingStoreError(
            'CORRUPT_DATA',
            `${source} ends at ${done} bytes, before the backup's cut at ${total}`,
            { file: source, offset: done },
          );
        }
        await output.write(buffer, 0, bytesRead, done);
        done += bytesRead;
        onBytes(bytesRead);
      }
      await output.datasync();
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
}
