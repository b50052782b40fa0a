import { RingStoreError } from '../errors.js';
import { crc32 } from '../model/crc.js';
import { type FileIO, readFileFrom, readWholeFile } from './file-io.js';
import {
  endOfNonZero,
  FORMAT_VERSION,
  INDEX_FILE,
  isLegacyFormat,
  joinPath,
  parseSegmentFileName,
  REGISTRY_FILE,
  segmentFileName,
} from './format.js';
import { decodeIndexRecord, EVENT_HEADER_BYTES, emptyIndexRecord, type IndexRecord } from './index-record.js';
import type { NameRegistry } from './name-registry.js';
import {
  advanceIndexState,
  classifyFault,
  copyIndexScanState,
  type DataEnd,
  type IndexScanState,
  indexVouchAfter,
  newIndexScanState,
  registryVouchAfter,
  scanIndex,
  scanRegistry,
} from './scan.js';
import { checkSegmentHeader, SEGMENT_HEADER_BYTES } from './segment-header.js';

/**
 * The one reading of a domain folder that recovery (which applies it) and verify (which reports it)
 * share. docs/FORMAT.md, "Recovery", states the rule:
 *
 *   registry, index   the valid records from the start of the file; past them, zeros are
 *                     preallocated space; anything else is damage, which is
 *                       corrupt   when a record (before it, or any valid record after it) vouches
 *                                 for bytes past it: those were synced, so the disk lost them
 *                       a tail    otherwise: a commit that was never acknowledged; cut
 *   unvouched records index records that no record vouches for (the last commits) get their data
 *                     checked against their event CRCs; the first that fails, and all after it,
 *                     are a tail (its commit was never acknowledged: data and index are synced
 *                     together and acknowledged after both)
 *   data              bytes past where the surviving index says each aggregate type's data ends,
 *                     and segments past the last one it references, are cut
 *
 * A cut never deletes: recovery moves the bytes aside into `<file>.cut-<offset>` (quarantine).
 */
export interface Damage {
  /** Path relative to the store directory. */
  file: string;
  offset: number;
  reason: string;
}

/**
 * `file` is cut at `offset`; its bytes [start, end) — from the first to the last non-zero byte past
 * the cut, so preallocated zeros are not copied — are moved aside. `whole`: the file is renamed.
 */
export interface PlannedCut {
  file: string;
  offset: number;
  start: number;
  end: number;
  /** Size of the file before the cut. */
  size: number;
  whole: boolean;
  reason: string;
}

export interface DomainPlan {
  domain: string;
  registry: NameRegistry;
  /** Bytes of the registry and index files that stay. */
  registryEnd: number;
  indexEnd: number;
  /** Sizes of the files now (their preallocated zeros included). */
  registrySize: number;
  indexSize: number;
  /** The scan state past the last index record that stays. */
  state: IndexScanState;
  /** Damage to synced bytes: recovery refuses, verify reports. The rest of the plan is then partial. */
  corrupt: Damage | undefined;
  cuts: PlannedCut[];
  /** Data segment files: aggregate type → segment → size. */
  segments: Map<string, Map<number, number>>;
  records: number;
  events: number;
}

export function unsupportedFormat(file: string): RingStoreError {
  return new RingStoreError(
    'UNSUPPORTED_FORMAT',
    `${file} is in on-disk format version 1; this ringstore reads version ${FORMAT_VERSION}. Open it with the ringstore release that wrote it and copy its events into a new store (docs/FORMAT.md, "Format versions")`,
    { file, version: 1 },
  );
}

export function corruptData(damage: Damage): RingStoreError {
  return new RingStoreError(
    'CORRUPT_DATA',
    `${damage.file} is damaged at offset ${damage.offset} (${damage.reason}): these bytes were synced, so they are not cut automatically`,
    { file: damage.file, offset: damage.offset, reason: damage.reason },
  );
}

/**
 * Where a plan starts reading the index: a checkpoint's indexEnd and the scan state there (records
 * before it were synced and are not read again). Without one, the index is read from its start.
 */
export interface PlanStart {
  /** The checkpoint's registryEnd: registry bytes below it were synced, so damage there is corrupt. */
  registryEnd: number;
  indexOffset: number;
  nextPosition: number;
  lastGeneration: number;
  lastTimestamp: number;
  dataEnds: Map<number, DataEnd>;
}

/**
 * Reads a domain folder and decides what stays. `onRecord` sees every index record that stays, in
 * order (the writer rebuilds its index from them, verify checks their data).
 */
export function planDomain(
  io: FileIO,
  root: string,
  domain: string,
  onRecord?: (record: IndexRecord, view: DataView, registry: NameRegistry) => void,
  start?: PlanStart,
): DomainPlan {
  const folder = joinPath(root, domain);
  const segments = listSegments(io, folder);
  const registryFile = `${domain}/${REGISTRY_FILE}`;
  const indexFile = `${domain}/${INDEX_FILE}`;
  const registryBytes = readWholeFile(io, joinPath(folder, REGISTRY_FILE));
  if (isLegacyFormat(registryBytes)) throw unsupportedFormat(registryFile);
  // With a start, only the index past it is read: offsets in indexBytes are file offsets − base.
  const base = start?.indexOffset ?? 0;
  const indexBytes = readFileFrom(io, joinPath(folder, INDEX_FILE), base);
  if (isLegacyFormat(base === 0 ? indexBytes : readFileHead(io, joinPath(folder, INDEX_FILE)))) {
    throw unsupportedFormat(indexFile);
  }
  const indexVouch = (bytes: Uint8Array, from: number) => indexVouchAfter(bytes, from) - base;

  const cuts: PlannedCut[] = [];
  let corrupt: Damage | undefined;
  const registryScan = scanRegistry(registryBytes);
  const registryVerdict = classifyFault(registryBytes, registryScan, registryVouchAfter);
  const vouchedRegistry = start?.registryEnd ?? 0;
  if (registryVerdict === 'corrupt') {
    corrupt = { file: registryFile, offset: registryScan.validEnd, reason: registryScan.fault!.reason };
  } else if (registryScan.validEnd < vouchedRegistry) {
    // The checkpoint vouches for the registry up to its end, whatever the records past the fault say.
    const what = registryScan.fault?.reason ?? 'the records end';
    corrupt = {
      file: registryFile,
      offset: registryScan.validEnd,
      reason: `${what}, below the checkpoint's end ${vouchedRegistry}: synced bytes are damaged`,
    };
  } else if (registryVerdict === 'tail') {
    cuts.push(tailCut(registryFile, registryBytes, registryScan.validEnd, registryScan.fault!.reason));
  }
  const registry = registryScan.registry;

  // Index records wait in `unvouched` until a later record vouches for them; `before` is the scan
  // state before the first of them, so that a cut among them can rewind to it.
  const unvouched: number[] = [];
  let before: IndexScanState | undefined;
  let vouched = 0;
  let records = 0;
  let events = 0;
  const state = newIndexScanState(registry);
  if (start) {
    state.nextPosition = start.nextPosition;
    state.lastGeneration = start.lastGeneration;
    state.lastTimestamp = start.lastTimestamp;
    for (const [code, end] of start.dataEnds) state.dataEnds.set(code, { ...end });
  }
  const view = new DataView(indexBytes.buffer, indexBytes.byteOffset, indexBytes.byteLength);
  const again = emptyIndexRecord();
  const deliver = (offset: number) => {
    decodeIndexRecord(indexBytes, view, offset, again, base);
    onRecord?.(again, view, registry);
    advanceIndexState(before!, again);
    records++;
    events += again.eventCount;
  };
  const segmentSize = (code: number, segment: number) =>
    segments.get(registry.aggregateTypes[code]!)?.get(segment) ?? -1;
  // Records carry file offsets (syncedEnd is checked against them): scan at `base`, then keep
  // offsets relative to indexBytes.
  const fileScan = scanIndex(indexBytes, state, {
    baseOffset: base,
    onRecord: (record) => {
      vouched = Math.max(vouched, record.syncedEnd - base);
      while (unvouched.length > 0 && unvouched[0]! < vouched) {
        const offset = unvouched.shift()!;
        const lost = vouchedDataLost(again, indexBytes, view, offset, base, segmentSize);
        if (lost !== undefined && corrupt === undefined)
          corrupt = { file: indexFile, offset: base + offset, reason: lost };
        deliver(offset);
      }
      if (unvouched.length === 0) before = copyIndexScanState(state);
      unvouched.push(record.fileOffset - base);
    },
  });

  const scan = { ...fileScan, validEnd: fileScan.validEnd - base };
  const indexVerdict = classifyFault(indexBytes, { ...scan, vouched: scan.vouched - base }, indexVouch);
  let indexEnd = scan.validEnd;
  if (indexVerdict === 'corrupt' && corrupt === undefined) {
    corrupt = { file: indexFile, offset: base + scan.validEnd, reason: scan.fault!.reason };
  }
  const check = new DataCheck(io, root, domain, registry, segments);
  let cutAt = -1;
  let cutReason = '';
  for (const offset of unvouched) {
    decodeIndexRecord(indexBytes, view, offset, again, base);
    const failure = corrupt === undefined ? check.batch(again, view) : undefined;
    if (failure !== undefined) {
      cutAt = offset;
      cutReason = failure;
      break;
    }
    deliver(offset);
  }
  check.close();
  const finalState = before ?? state;
  if (cutAt >= 0) {
    indexEnd = cutAt;
    cuts.push(shiftCut(tailCut(indexFile, indexBytes, cutAt, cutReason), base));
  } else if (indexVerdict === 'tail') {
    cuts.push(shiftCut(tailCut(indexFile, indexBytes, scan.validEnd, scan.fault!.reason), base));
  }
  finalState.registry = registry;

  if (corrupt === undefined) cuts.push(...dataCuts(io, folder, domain, registry, finalState, segments));
  return {
    domain,
    registry,
    registryEnd: registryScan.validEnd,
    indexEnd: base + indexEnd,
    registrySize: registryBytes.byteLength,
    indexSize: base + indexBytes.byteLength,
    state: finalState,
    corrupt,
    cuts,
    segments,
    records,
    events,
  };
}

/** A cut planned on bytes read from file offset `base`, in file offsets. */
function shiftCut(cut: PlannedCut, base: number): PlannedCut {
  return {
    ...cut,
    offset: cut.offset + base,
    start: cut.start + base,
    end: cut.end + base,
    size: cut.size + base,
  };
}

/** The first 8 bytes of a file (fewer when it is shorter). */
function readFileHead(io: FileIO, path: string): Uint8Array {
  const fd = io.open(path, 'read');
  try {
    const head = new Uint8Array(8);
    return head.subarray(0, io.read(fd, head, 0, 8, 0));
  } finally {
    io.close(fd);
  }
}

function tailCut(file: string, bytes: Uint8Array, offset: number, reason: string): PlannedCut {
  const end = endOfNonZero(bytes, offset);
  let start = offset;
  while (start < end && bytes[start] === 0) start++;
  return { file, offset, start, end, size: bytes.byteLength, whole: false, reason };
}

/**
 * Why the data of a vouched record cannot be on disk, if it cannot: its segment file is missing, or
 * ends before the record's data does. Its commit's barrier synced that data, so either is damage.
 */
function vouchedDataLost(
  record: IndexRecord,
  bytes: Uint8Array,
  view: DataView,
  offset: number,
  base: number,
  segmentSize: (code: number, segment: number) => number,
): string | undefined {
  decodeIndexRecord(bytes, view, offset, record, base);
  if (record.dataLength === 0) return undefined;
  const size = segmentSize(record.aggregateTypeCode, record.dataSegment);
  if (size < 0) return 'data file missing';
  const end = record.dataOffset + record.dataLength;
  return size < end
    ? `data file ${record.dataSegment} ends at ${size}, before this record's data ends at ${end}`
    : undefined;
}

/** Reads the data of unvouched batches back and checks it against the CRCs of their records. */
class DataCheck {
  readonly #io: FileIO;
  readonly #root: string;
  readonly #domain: string;
  readonly #registry: NameRegistry;
  readonly #segments: Map<string, Map<number, number>>;
  readonly #fds = new Map<string, number>();
  #buffer = new Uint8Array(64 * 1024);

  constructor(
    io: FileIO,
    root: string,
    domain: string,
    registry: NameRegistry,
    segments: Map<string, Map<number, number>>,
  ) {
    this.#io = io;
    this.#root = root;
    this.#domain = domain;
    this.#registry = registry;
    this.#segments = segments;
  }

  /** Undefined when every event of the batch is intact, else why not. */
  batch(record: IndexRecord, view: DataView): string | undefined {
    if (record.dataLength === 0) return undefined;
    const aggregateType = this.#registry.aggregateTypes[record.aggregateTypeCode]!;
    const size = this.#segments.get(aggregateType)?.get(record.dataSegment) ?? -1;
    if (size < 0) return 'data file missing';
    if (size < record.dataOffset + record.dataLength) return 'data missing';
    const file = `${this.#domain}/${segmentFileName(aggregateType, record.dataSegment)}`;
    let fd = this.#fds.get(file);
    if (fd === undefined) {
      fd = this.#io.open(joinPath(this.#root, file), 'read');
      this.#fds.set(file, fd);
      const header = new Uint8Array(SEGMENT_HEADER_BYTES);
      this.#io.read(fd, header, 0, SEGMENT_HEADER_BYTES, 0);
      const wrong = checkSegmentHeader(header, record.dataSegment, record.aggregateTypeCode);
      if (wrong) return wrong;
    }
    if (this.#buffer.byteLength < record.dataLength) this.#buffer = new Uint8Array(record.dataLength);
    const buffer = this.#buffer;
    if (this.#io.read(fd, buffer, 0, record.dataLength, record.dataOffset) !== record.dataLength) {
      return 'data missing';
    }
    return firstBadEvent(record, view, buffer) < 0 ? undefined : 'data fails its CRC';
  }

  close(): void {
    for (const fd of this.#fds.values()) this.#io.close(fd);
    this.#fds.clear();
  }
}

/**
 * Index (0-based) of the first event of `record` whose stored bytes in `data` (the batch's bytes,
 * from its dataOffset) fail their CRC, or -1. Reports the offset of each failure to `onBad`.
 */
export function firstBadEvent(
  record: IndexRecord,
  view: DataView,
  data: Uint8Array,
  onBad?: (event: number, offsetInBatch: number) => void,
): number {
  let at = 0;
  let first = -1;
  for (let i = 0; i < record.eventCount; i++) {
    const header = record.headersOffset + i * EVENT_HEADER_BYTES;
    const length = view.getUint16(header, true) + view.getUint16(header + 2, true);
    if (crc32(data.subarray(at, at + length)) !== view.getUint32(header + 8, true)) {
      if (first < 0) first = i;
      if (!onBad) return first;
      onBad(i, at);
    }
    at += length;
  }
  return first;
}

/** The cuts of data that no surviving index record references. */
function dataCuts(
  io: FileIO,
  folder: string,
  domain: string,
  registry: NameRegistry,
  state: IndexScanState,
  segments: Map<string, Map<number, number>>,
): PlannedCut[] {
  const cuts: PlannedCut[] = [];
  for (const [aggregateType, sizes] of segments) {
    const code = registry.aggregateCode(aggregateType);
    const end =
      code >= 0 ? (state.dataEnds.get(code) ?? { segment: 0, end: SEGMENT_HEADER_BYTES }) : undefined;
    for (const [segment, size] of sizes) {
      const file = `${domain}/${aggregateType}.${segment}`;
      if (end === undefined || segment > end.segment) {
        cuts.push({ file, offset: 0, start: 0, end: size, size, whole: true, reason: 'unreferenced data' });
      } else if (segment === end.segment && size > end.end) {
        const tail = readRange(io, joinPath(folder, `${aggregateType}.${segment}`), end.end, size);
        const cut = tailCut(file, tail, 0, 'unreferenced data');
        if (cut.end > 0) {
          cuts.push({ ...cut, offset: end.end, start: end.end + cut.start, end: end.end + cut.end, size });
        }
      }
    }
  }
  return cuts;
}

function readRange(io: FileIO, path: string, from: number, to: number): Uint8Array {
  const fd = io.open(path, 'read');
  try {
    const bytes = new Uint8Array(to - from);
    const got = io.read(fd, bytes, 0, bytes.byteLength, from);
    return bytes.subarray(0, got);
  } finally {
    io.close(fd);
  }
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
