import { RingStoreError } from '../errors.js';
import { type FileIO, readWholeFile } from './file-io.js';
import { INDEX_FILE, type IndexRecord, joinPath, parseSegmentFileName, REGISTRY_FILE } from './format.js';
import { type Damage, type IndexScanState, newIndexScanState, scanIndex, scanRegistry } from './scan.js';

/**
 * Recovery of one domain folder, run by StorageWriter.open before any append:
 *
 *   1. read the registry and the index and scan them (scan.ts);
 *   2. damage followed by valid records → CORRUPT_DATA with file and offset, nothing is changed;
 *   3. a torn tail → cut the registry, then the index, at the end of their last valid record;
 *   4. data past what the surviving index references → cut (current segment) or delete (later
 *      segments, and segments of names the registry does not hold).
 *
 * Every step is a truncate or unlink followed by fsync, and each only removes bytes that no valid
 * record references, so a crash at any point leaves a state that the next recovery finishes: running
 * recovery twice gives the same result as running it once.
 */
export interface RecoveryAction {
  /** Path relative to the store directory. */
  file: string;
  action: 'truncated' | 'deleted';
  /** Size before and after. */
  from: number;
  to: number;
  reason: string;
}

export interface RecoveredDomain {
  state: IndexScanState;
  registryEnd: number;
  indexEnd: number;
  actions: RecoveryAction[];
}

export function corruptData(damage: Damage): RingStoreError {
  return new RingStoreError(
    'CORRUPT_DATA',
    `${damage.file} is damaged at offset ${damage.offset} (${damage.reason}) and valid records follow; it is not cut automatically`,
    { file: damage.file, offset: damage.offset, reason: damage.reason },
  );
}

export function recoverDomain(
  io: FileIO,
  root: string,
  domain: string,
  onRecord: (record: IndexRecord, bytes: Uint8Array, view: DataView) => void,
): RecoveredDomain {
  const folder = joinPath(root, domain);
  const actions: RecoveryAction[] = [];
  const segments = listSegments(io, folder);

  const registryBytes = readWholeFile(io, joinPath(folder, REGISTRY_FILE));
  const registryScan = scanRegistry(registryBytes, `${domain}/${REGISTRY_FILE}`);
  if (registryScan.damage && !registryScan.damage.tail) throw corruptData(registryScan.damage);

  const indexBytes = readWholeFile(io, joinPath(folder, INDEX_FILE));
  const registry = registryScan.registry;
  const state = newIndexScanState(registry);
  const indexScan = scanIndex(indexBytes, `${domain}/${INDEX_FILE}`, state, {
    onRecord,
    segmentSize: (code, segment) => segments.get(registry.aggregateTypes[code]!)?.get(segment) ?? -1,
  });
  if (indexScan.damage && !indexScan.damage.tail) throw corruptData(indexScan.damage);

  const cut = (name: string, size: number, keep: number, reason: string) => {
    if (size <= keep) return;
    truncateFile(io, joinPath(folder, name), keep);
    actions.push({ file: `${domain}/${name}`, action: 'truncated', from: size, to: keep, reason });
  };
  cut(REGISTRY_FILE, registryBytes.byteLength, registryScan.validEnd, registryScan.damage?.reason ?? '');
  cut(INDEX_FILE, indexBytes.byteLength, indexScan.validEnd, indexScan.damage?.reason ?? '');

  let deleted = false;
  for (const [aggregateType, sizes] of segments) {
    const code = registry.aggregateCode(aggregateType);
    const end = code >= 0 ? (state.dataEnds.get(code) ?? { segment: 0, end: 0 }) : undefined;
    for (const [segment, size] of sizes) {
      const name = `${aggregateType}.${segment}`;
      if (end === undefined || segment > end.segment) {
        io.unlink(joinPath(folder, name));
        actions.push({
          file: `${domain}/${name}`,
          action: 'deleted',
          from: size,
          to: 0,
          reason: 'unreferenced data',
        });
        deleted = true;
      } else if (segment === end.segment) {
        cut(name, size, end.end, 'unreferenced data');
      }
    }
  }
  if (deleted) io.fsyncDir(folder);
  return { state, registryEnd: registryScan.validEnd, indexEnd: indexScan.validEnd, actions };
}

/** Data segment files of a domain folder with their sizes: aggregate type → segment → bytes. */
export function listSegments(io: FileIO, folder: string): Map<string, Map<number, number>> {
  const segments = new Map<string, Map<number, number>>();
  for (const name of io.readdir(folder)) {
    const parsed = parseSegmentFileName(name);
    if (!parsed) continue;
    const fd = io.open(joinPath(folder, name), 'read');
    let size: number;
    try {
      size = io.size(fd);
    } finally {
      io.close(fd);
    }
    let sizes = segments.get(parsed.aggregateType);
    if (!sizes) {
      sizes = new Map();
      segments.set(parsed.aggregateType, sizes);
    }
    sizes.set(parsed.segment, size);
  }
  return segments;
}

function truncateFile(io: FileIO, path: string, size: number): void {
  const fd = io.open(path, 'readwrite');
  try {
    io.truncate(fd, size);
    io.fsync(fd);
  } finally {
    io.close(fd);
  }
}
