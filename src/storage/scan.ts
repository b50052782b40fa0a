import { endOfNonZero, findValidRecordAfter, INDEX_MAGIC, REGISTRY_MAGIC } from './format.js';
import { decodeIndexRecord, EVENT_HEADER_BYTES, emptyIndexRecord, type IndexRecord } from './index-record.js';
import { NameRegistry } from './name-registry.js';
import { decodeRegistryRecord } from './registry-record.js';
import { SEGMENT_HEADER_BYTES } from './segment-header.js';

/**
 * Scanning of registry and index bytes, shared by the recovery plan (recovery and verify) and
 * StorageReader. A scan accepts records while each one is valid on its own (length, magic, CRC,
 * fields) and in sequence with what came before (registry sequence and codes; index position, known
 * codes, contiguous data location, non-decreasing generation and timestamp), and stops at the first
 * record that is not: its offset and reason are the scan's `fault`.
 *
 * Every record carries `syncedEnd`, the bytes of its file the writer knew durable when it wrote it.
 * `vouched` is the largest such claim a scan saw: bytes before it were synced, so a fault before it
 * is damage to durable bytes (`classifyFault`), never a torn tail.
 */
export interface Fault {
  offset: number;
  reason: string;
}

/** Where a scan stopped and what the records it read vouch for. */
export interface ScanEnd {
  /** File offset just past the last accepted record. */
  validEnd: number;
  /** Largest `syncedEnd` of the accepted records. */
  vouched: number;
  fault: Fault | undefined;
}

export interface RegistryScan extends ScanEnd {
  registry: NameRegistry;
}

export function scanRegistry(bytes: Uint8Array, registry = new NameRegistry()): RegistryScan {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  let vouched = 0;
  while (offset < bytes.byteLength) {
    const record = decodeRegistryRecord(bytes, view, offset);
    let reason: string | undefined;
    if (typeof record === 'string') reason = record;
    else if (!registry.accept(record)) reason = 'sequence';
    if (reason !== undefined || typeof record === 'string') {
      return { registry, validEnd: offset, vouched, fault: { offset, reason: reason ?? 'sequence' } };
    }
    vouched = Math.max(vouched, record.syncedEnd);
    offset += record.recordLength;
  }
  return { registry, validEnd: offset, vouched, fault: undefined };
}

/** Largest `syncedEnd` of the structurally valid registry records after `from` (0 when none). */
export function registryVouchAfter(bytes: Uint8Array, from: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return largestVouchAfter(bytes, from, REGISTRY_MAGIC, (at) => {
    const record = decodeRegistryRecord(bytes, view, at);
    return typeof record === 'string' ? -1 : record.syncedEnd;
  });
}

/** Largest `syncedEnd` of the structurally valid index records after `from` (0 when none). */
export function indexVouchAfter(bytes: Uint8Array, from: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const record = emptyIndexRecord();
  return largestVouchAfter(bytes, from, INDEX_MAGIC, (at) =>
    decodeIndexRecord(bytes, view, at, record) === undefined ? record.syncedEnd : -1,
  );
}

/** `vouchAt(offset)`: the syncedEnd of a valid record there, or -1. */
function largestVouchAfter(
  bytes: Uint8Array,
  from: number,
  magicNumber: number,
  vouchAt: (offset: number) => number,
): number {
  let vouched = 0;
  let claim = -1;
  for (let at = from; ; ) {
    at = findValidRecordAfter(bytes, at, magicNumber, (offset) => {
      claim = vouchAt(offset);
      return claim >= 0;
    });
    if (at < 0) return vouched;
    vouched = Math.max(vouched, claim);
  }
}

/**
 * What a fault means (docs/FORMAT.md, "Recovery"): 'end' when only zeros follow the valid records
 * (preallocated space: no fault at all); 'corrupt' when a record — before the fault or anywhere
 * after it — vouches for bytes past the fault; otherwise 'tail', bytes of a commit that was never
 * acknowledged, which recovery moves aside.
 */
export function classifyFault(
  bytes: Uint8Array,
  scan: ScanEnd,
  vouchAfter: (bytes: Uint8Array, from: number) => number,
): 'end' | 'tail' | 'corrupt' {
  const vouched = Math.max(scan.vouched, vouchAfter(bytes, scan.validEnd));
  if (vouched > scan.validEnd) return 'corrupt';
  return endOfNonZero(bytes, scan.validEnd) === scan.validEnd ? 'end' : 'tail';
}

/** Where the data of one aggregate type ends, as the index says. */
export interface DataEnd {
  segment: number;
  end: number;
}

/** The running state an index scan checks each record against and advances. */
export interface IndexScanState {
  registry: NameRegistry;
  nextPosition: number;
  lastGeneration: number;
  lastTimestamp: number;
  /** Per aggregate-type code. */
  dataEnds: Map<number, DataEnd>;
}

export function newIndexScanState(registry: NameRegistry): IndexScanState {
  return { registry, nextPosition: 0, lastGeneration: 0, lastTimestamp: 0, dataEnds: new Map() };
}

export function copyIndexScanState(state: IndexScanState): IndexScanState {
  const dataEnds = new Map<number, DataEnd>();
  for (const [code, end] of state.dataEnds) dataEnds.set(code, { ...end });
  return { ...state, dataEnds };
}

export interface IndexScanOptions {
  /** Offset in the index file of bytes[0] (for reporting and for records' fileOffset). */
  baseOffset?: number;
  /** Called for every accepted record, before the state advances past it. */
  onRecord?: (record: IndexRecord, bytes: Uint8Array, view: DataView) => void;
}

export interface IndexScan extends ScanEnd {
  records: number;
  events: number;
}

export function scanIndex(
  bytes: Uint8Array,
  state: IndexScanState,
  options: IndexScanOptions = {},
): IndexScan {
  const base = options.baseOffset ?? 0;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const record = emptyIndexRecord();
  let offset = 0;
  let records = 0;
  let events = 0;
  let vouched = 0;
  while (offset < bytes.byteLength) {
    const reason = decodeIndexRecord(bytes, view, offset, record, base) ?? checkSequence(record, view, state);
    if (reason !== undefined) {
      return { validEnd: base + offset, vouched, records, events, fault: { offset: base + offset, reason } };
    }
    options.onRecord?.(record, bytes, view);
    advanceIndexState(state, record);
    vouched = Math.max(vouched, record.syncedEnd);
    records++;
    events += record.eventCount;
    offset += record.recordLength;
  }
  return { validEnd: base + offset, vouched, records, events, fault: undefined };
}

/** Moves the scan state past an accepted record. */
export function advanceIndexState(state: IndexScanState, record: IndexRecord): void {
  state.nextPosition += record.eventCount;
  state.lastGeneration = record.generation;
  state.lastTimestamp = record.timestamp;
  const end = state.dataEnds.get(record.aggregateTypeCode);
  if (end) {
    end.segment = record.dataSegment;
    end.end = record.dataOffset + record.dataLength;
  } else {
    state.dataEnds.set(record.aggregateTypeCode, {
      segment: record.dataSegment,
      end: record.dataOffset + record.dataLength,
    });
  }
}

/** Checks a structurally valid record against what the scan has accepted before it. */
function checkSequence(record: IndexRecord, view: DataView, state: IndexScanState): string | undefined {
  if (record.firstPosition !== state.nextPosition) return 'position out of sequence';
  if (record.generation < state.lastGeneration || record.timestamp < state.lastTimestamp) {
    return 'generation or timestamp decreases';
  }
  const registry = state.registry;
  if (record.aggregateTypeCode >= registry.aggregateTypes.length) return 'unknown aggregate type code';
  const eventTypes = registry.eventTypes.length;
  for (let i = 0; i < record.eventCount; i++) {
    if (view.getUint16(record.headersOffset + i * EVENT_HEADER_BYTES + 4, true) >= eventTypes)
      return 'unknown event type code';
  }
  const end = state.dataEnds.get(record.aggregateTypeCode);
  const continues =
    end === undefined
      ? record.dataSegment === 0 && record.dataOffset === SEGMENT_HEADER_BYTES
      : record.dataSegment === end.segment && record.dataOffset === end.end;
  const rolls =
    end !== undefined &&
    record.dataSegment === end.segment + 1 &&
    record.dataOffset === SEGMENT_HEADER_BYTES &&
    end.end > SEGMENT_HEADER_BYTES;
  if (!continues && !rolls) return 'data location out of sequence';
  return undefined;
}
