import {
  decodeIndexRecord,
  decodeRegistryRecord,
  emptyIndexRecord,
  findValidRecordAfter,
  INDEX_MAGIC,
  type IndexRecord,
  REGISTRY_MAGIC,
} from './format.js';
import { NameRegistry } from './name-registry.js';

/**
 * Scanning of registry and index bytes, shared by recovery (StorageWriter.open), StorageReader and
 * verifyStore. A scan accepts records while each one is valid on its own (length, magic, CRC,
 * fields) and in sequence with what came before (registry sequence and codes; index position,
 * known codes, contiguous data location, non-decreasing generation and timestamp).
 *
 * At the first record that fails, the scan stops and reports damage. The damage is a *tail* when no
 * structurally valid record follows it anywhere in the file: the signature of a write cut short by a
 * crash, which recovery may cut. Otherwise it is corruption inside the durable region, which is
 * reported with its offset and never cut.
 */
export interface Damage {
  file: string;
  offset: number;
  reason: string;
  /** True when nothing valid follows: a torn tail that recovery cuts. */
  tail: boolean;
}

export interface RegistryScan {
  registry: NameRegistry;
  /** Bytes of valid records from the start of the file. */
  validEnd: number;
  damage: Damage | undefined;
}

export function scanRegistry(bytes: Uint8Array, file: string, registry = new NameRegistry()): RegistryScan {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  while (offset < bytes.byteLength) {
    const record = decodeRegistryRecord(bytes, view, offset);
    let reason: string | undefined;
    if (typeof record === 'string') reason = record;
    else if (!registry.accept(record)) reason = 'sequence';
    if (reason !== undefined) {
      const next = findValidRecordAfter(
        bytes,
        offset,
        REGISTRY_MAGIC,
        (at) => typeof decodeRegistryRecord(bytes, view, at) !== 'string',
      );
      return { registry, validEnd: offset, damage: { file, offset, reason, tail: next < 0 } };
    }
    offset += (record as { recordLength: number }).recordLength;
  }
  return { registry, validEnd: offset, damage: undefined };
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

export interface IndexScanOptions {
  /** Offset in the index file of bytes[0] (for reporting and for records' fileOffset). */
  baseOffset?: number;
  /**
   * Size of a data segment file (-1 when missing). When given, a record whose data is not all
   * there ends the scan: as tail damage when the segment is short (docs/FORMAT.md, "index ahead of
   * data"), as corruption when the segment file is missing.
   */
  segmentSize?: (aggregateTypeCode: number, segment: number) => number;
  /** Called for every accepted record, before the state advances past it. */
  onRecord?: (record: IndexRecord, bytes: Uint8Array, view: DataView) => void;
}

export interface IndexScan {
  /** File offset just past the last accepted record. */
  validEnd: number;
  records: number;
  events: number;
  damage: Damage | undefined;
}

export function scanIndex(
  bytes: Uint8Array,
  file: string,
  state: IndexScanState,
  options: IndexScanOptions = {},
): IndexScan {
  const base = options.baseOffset ?? 0;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const record = emptyIndexRecord();
  let offset = 0;
  let records = 0;
  let events = 0;
  while (offset < bytes.byteLength) {
    const reason = decodeIndexRecord(bytes, view, offset, record) ?? checkSequence(record, view, state);
    if (reason === undefined && options.segmentSize && record.dataLength > 0) {
      const size = options.segmentSize(record.aggregateTypeCode, record.dataSegment);
      if (size < record.dataOffset + record.dataLength) {
        // A short segment is what a crash leaves when index pages reached the disk before data
        // pages (durability 'write'/'none'): a tail. A missing one is not: every segment file is
        // made durable in its folder before any byte is written to it.
        const damage =
          size < 0
            ? { file, offset: base + offset, reason: 'data file missing', tail: false }
            : { file, offset: base + offset, reason: 'data missing', tail: true };
        return { validEnd: base + offset, records, events, damage };
      }
    }
    if (reason !== undefined) {
      const scratch = emptyIndexRecord();
      const next = findValidRecordAfter(
        bytes,
        offset,
        INDEX_MAGIC,
        (at) => decodeIndexRecord(bytes, view, at, scratch) === undefined,
      );
      const damage = { file, offset: base + offset, reason, tail: next < 0 };
      return { validEnd: base + offset, records, events, damage };
    }
    record.fileOffset = base + offset;
    options.onRecord?.(record, bytes, view);
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
    records++;
    events += record.eventCount;
    offset += record.recordLength;
  }
  return { validEnd: base + offset, records, events, damage: undefined };
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
    if (view.getUint16(record.headersOffset + i * 8 + 2, true) >= eventTypes)
      return 'unknown event type code';
  }
  const end = state.dataEnds.get(record.aggregateTypeCode) ?? { segment: 0, end: 0 };
  const continues = record.dataSegment === end.segment && record.dataOffset === end.end;
  const rolls = record.dataSegment === end.segment + 1 && record.dataOffset === 0 && end.end > 0;
  if (!continues && !rolls) return 'data location out of sequence';
  return undefined;
}
