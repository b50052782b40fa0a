import { RingStoreError } from '../errors.js';
import type { FileIO } from './file-io.js';
import { joinPath } from './format.js';

/**
 * The marker of a store directory that a tool is still writing (a backup, a repartition): the tool
 * creates `<dir>/INCOMPLETE` (synced, with the folder) before anything else and removes it as its
 * very last step, once the new store is whole, synced and checked. Every open of a store (writer,
 * reader, verify) refuses a directory that holds it, so a target that a crash or a kill left half
 * written is never mistaken for a finished store. The file says which tool wrote it, from what.
 */
export const INCOMPLETE_FILE = 'INCOMPLETE';

export function incompleteStore(dir: string, note: string): RingStoreError {
  return new RingStoreError(
    'STORE_INCOMPLETE',
    `${dir} was being written by ${note.trim() || 'a ringstore tool'} and is not finished (${INCOMPLETE_FILE} is there): it is not a store; remove the directory and run the tool again`,
    { file: INCOMPLETE_FILE },
  );
}

/** Throws STORE_INCOMPLETE when `dir` holds the marker. */
export function refuseIncomplete(io: FileIO, dir: string): void {
  const path = joinPath(dir, INCOMPLETE_FILE);
  if (!io.exists(path)) return;
  let note = '';
  try {
    note = new TextDecoder().decode(readSmall(io, path));
  } catch {
    // The marker's presence is what counts; its text only explains.
  }
  throw incompleteStore(dir, note);
}

function readSmall(io: FileIO, path: string): Uint8Array {
  const fd = io.open(path, 'read');
  try {
    const bytes = new Uint8Array(512);
    const got = io.read(fd, bytes, 0, bytes.byteLength, 0);
    return bytes.subarray(0, got);
  } finally {
    io.close(fd);
  }
}

/** Creates the marker in the (new, empty) directory `dir` and makes it durable. */
export function writeIncompleteMarker(io: FileIO, dir: string, note: string): void {
  const fd = io.open(joinPath(dir, INCOMPLETE_FILE), 'create');
  try {
    const bytes = new TextEncoder().encode(`${note}\n`);
    io.write(fd, bytes, 0);
    io.fsync(fd);
  } finally {
    io.close(fd);
  }
  io.fsyncDir(dir);
}

/** The tool's last step: the store in `dir` is finished; removing the marker makes it openable. */
export function removeIncompleteMarker(io: FileIO, dir: string): void {
  io.unlink(joinPath(dir, INCOMPLETE_FILE));
  io.fsyncDir(dir);
}
