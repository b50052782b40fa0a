import { type FileIO, readWholeFile } from './file-io.js';
import { joinPath, quarantineFileName } from './format.js';
import type { IndexRecord } from './index-record.js';
import {
  corruptData,
  type DomainPlan,
  type PlannedCut,
  type PlanStart,
  planDomain,
} from './recovery-plan.js';

/**
 * Recovery of one domain folder, run by StorageWriter.open before any append: it reads the folder
 * (planDomain, shared with verify), refuses with CORRUPT_DATA when synced bytes are damaged, and
 * otherwise applies the plan's cuts. Each cut first copies the bytes it removes into
 * `<file>.cut-<offset>` beside the file — from the first to the last byte past the cut that is not
 * zero, at that first byte's offset — (written, fsynced, its directory entry fsynced), then
 * truncates the file and fsyncs it; a whole unreferenced segment is renamed aside instead. A crash
 * at any point leaves a state that the next recovery finishes, writing the same quarantine files:
 * running recovery twice gives the same result as running it once. A quarantine file never
 * replaces another: a cut at the same place after a later crash, with other bytes, goes to
 * `<file>.cut-<offset>.<n>` (an existing file holding exactly the bytes being moved is reused).
 */
export interface RecoveryAction {
  /** Path relative to the store directory. */
  file: string;
  action: 'truncated' | 'moved';
  /** Size before and after. */
  from: number;
  to: number;
  /** Bytes moved aside, the offset in the file where they began, and where to (relative to the store directory). */
  quarantined: number;
  quarantinedFrom: number;
  quarantine: string;
  reason: string;
}

export function recoverDomain(
  io: FileIO,
  root: string,
  domain: string,
  onRecord: (record: IndexRecord) => void,
  start?: PlanStart,
): { plan: DomainPlan; actions: RecoveryAction[] } {
  const plan = planDomain(io, root, domain, onRecord, start);
  if (plan.corrupt) throw corruptData(plan.corrupt);
  const actions = plan.cuts.map((cut) => applyCut(io, root, cut));
  if (actions.length > 0) io.fsyncDir(joinPath(root, domain));
  return { plan, actions };
}

function applyCut(io: FileIO, root: string, cut: PlannedCut): RecoveryAction {
  const path = joinPath(root, cut.file);
  const folder = path.slice(0, path.lastIndexOf('/'));
  if (cut.whole) {
    const quarantine = freeQuarantine(io, root, cut, undefined);
    io.rename(path, joinPath(root, quarantine));
    io.fsyncDir(folder);
    return action(cut, 'moved', 0, quarantine);
  }
  const fd = io.open(path, 'readwrite');
  let quarantine: string;
  try {
    const moved = new Uint8Array(cut.end - cut.start);
    const got = io.read(fd, moved, 0, moved.byteLength, cut.start);
    quarantine = freeQuarantine(io, root, cut, moved.subarray(0, got));
    const aside = io.open(joinPath(root, quarantine), 'create');
    try {
      io.write(aside, moved.subarray(0, got), 0);
      io.truncate(aside, got);
      io.fsync(aside);
    } finally {
      io.close(aside);
    }
    io.fsyncDir(folder);
    io.truncate(fd, cut.offset);
    io.fsync(fd);
  } finally {
    io.close(fd);
  }
  return action(cut, 'truncated', cut.offset, quarantine);
}

/**
 * The quarantine name for a cut: the first of `<file>.cut-<offset>`, `….1`, `….2`, … that does not
 * exist or (for a truncation, `bytes`) already holds exactly the bytes being moved — left by a
 * recovery of the same cut that a crash interrupted.
 */
function freeQuarantine(io: FileIO, root: string, cut: PlannedCut, bytes: Uint8Array | undefined): string {
  for (let n = 0; ; n++) {
    const name = quarantineFileName(cut.file, cut.start, n);
    const path = joinPath(root, name);
    if (!io.exists(path)) return name;
    if (bytes !== undefined && sameBytes(readWholeFile(io, path), bytes)) return name;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

function action(
  cut: PlannedCut,
  kind: RecoveryAction['action'],
  to: number,
  quarantine: string,
): RecoveryAction {
  return {
    file: cut.file,
    action: kind,
    from: cut.size,
    to,
    quarantined: cut.end - cut.start,
    quarantinedFrom: cut.start,
    quarantine,
    reason: cut.reason,
  };
}
