import type { FileIO } from './file-io.js';
import { joinPath, quarantineFileName } from './format.js';
import type { IndexRecord } from './index-record.js';
import { corruptData, type DomainPlan, type PlannedCut, planDomain } from './recovery-plan.js';

/**
 * Recovery of one domain folder, run by StorageWriter.open before any append: it reads the folder
 * (planDomain, shared with verify), refuses with CORRUPT_DATA when synced bytes are damaged, and
 * otherwise applies the plan's cuts. Each cut first copies the bytes it removes into
 * `<file>.cut-<offset>` beside the file (written, fsynced, its directory entry fsynced), then
 * truncates the file and fsyncs it; a whole unreferenced segment is renamed aside instead. A crash
 * at any point leaves a state that the next recovery finishes, writing the same quarantine files:
 * running recovery twice gives the same result as running it once.
 */
export interface RecoveryAction {
  /** Path relative to the store directory. */
  file: string;
  action: 'truncated' | 'moved';
  /** Size before and after. */
  from: number;
  to: number;
  /** Bytes moved aside and where to (relative to the store directory). */
  quarantined: number;
  quarantine: string;
  reason: string;
}

export function recoverDomain(
  io: FileIO,
  root: string,
  domain: string,
  onRecord: (record: IndexRecord) => void,
): { plan: DomainPlan; actions: RecoveryAction[] } {
  const plan = planDomain(io, root, domain, onRecord);
  if (plan.corrupt) throw corruptData(plan.corrupt);
  const actions = plan.cuts.map((cut) => applyCut(io, root, cut));
  if (actions.length > 0) io.fsyncDir(joinPath(root, domain));
  return { plan, actions };
}

function applyCut(io: FileIO, root: string, cut: PlannedCut): RecoveryAction {
  const path = joinPath(root, cut.file);
  const quarantine = quarantineFileName(cut.file, cut.offset);
  const folder = path.slice(0, path.lastIndexOf('/'));
  if (cut.whole) {
    io.rename(path, joinPath(root, quarantine));
    io.fsyncDir(folder);
    return action(cut, 'moved', 0, quarantine);
  }
  const fd = io.open(path, 'readwrite');
  try {
    const moved = new Uint8Array(cut.end - cut.offset);
    const got = io.read(fd, moved, 0, moved.byteLength, cut.offset);
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
    quarantined: cut.end - cut.offset,
    quarantine,
    reason: cut.reason,
  };
}
