import { crc32 } from '../model/crc.js';
import { LIMITS } from '../model/limits.js';
import { INDEX_MAGIC, type RecordFault, readU53, writeU53 } from './format.js';
import type { EventList } from './types.js';

/**
 * The index record: one per batch (the events of one put to one instance), encoded by the writer
 * and decoded by every scanner. docs/FORMAT.md, "Index record", is its prose twin.
 *
 *   0  u32 recordLength     4  u32 magic "RSI" 2    8  u53 firstPosition   16 u64 aggregateId
 *   24 u53 firstVersion     32 u53 generation       40 u53 timestamp       48 u53 syncedEnd
 *   56 u32 dataSegment      60 u32 dataOffset       64 u32 dataLength      68 u32 eventCount
 *   72 u16 aggTypeCode      74 u8  keyLength        75 u8  reserved (0)    76 key bytes (UTF-8)
 *   then eventCount × event header, then u32 recordCrc of every byte before it
 *
 *   event header (12 bytes): u16 dataLength | u16 metadataLength | u16 typeCode | u16 reserved (0)
 *                            | u32 crc32 of the event's data followed by its metadata
 *
 * `syncedEnd` is how many bytes of this index file the writer knew to be durable (every commit
 * before them fully synced) when it wrote the record: the record vouches for them. Recovery uses
 * it to tell an unsynced tail from damage to synced bytes.
 */
export const INDEX_FIXED_BYTES = 80;
export const INDEX_HEADER_BYTES = 76;
export const EVENT_HEADER_BYTES = 12;
export const MAX_INDEX_RECORD_BYTES =
  INDEX_FIXED_BYTES + LIMITS.maxIdempotencyKeyBytes + EVENT_HEADER_BYTES * LIMITS.maxEventsPerBatch;

export function indexRecordBytes(keyLength: number, eventCount: number): number {
  return INDEX_FIXED_BYTES + keyLength + EVENT_HEADER_BYTES * eventCount;
}

/** The fields of an index record, as the writer encodes it and scanners decode it. */
export interface IndexRecord {
  /** Offset of the record in the index file. */
  fileOffset: number;
  recordLength: number;
  firstPosition: number;
  aggregateId: bigint;
  firstVersion: number;
  generation: number;
  timestamp: number;
  syncedEnd: number;
  dataSegment: number;
  dataOffset: number;
  /** Stored bytes of the batch in its segment: every event's data and metadata. */
  dataLength: number;
  eventCount: number;
  aggregateTypeCode: number;
  /** Offset within the scanned buffer of the first event header. */
  headersOffset: number;
  idempotencyKey: string | undefined;
}

/** What the writer knows of a batch before it encodes the record (the rest follows from its events). */
export type IndexRecordFields = Pick<
  IndexRecord,
  | 'firstPosition'
  | 'aggregateId'
  | 'firstVersion'
  | 'generation'
  | 'timestamp'
  | 'syncedEnd'
  | 'dataSegment'
  | 'dataOffset'
  | 'aggregateTypeCode'
> & { key: Uint8Array | undefined };

/**
 * Encodes the record of a batch at `start` of `bytes`; `typeCodes[codesStart + i]` is the registry
 * code of event i. Returns the offset just past the record.
 */
export function encodeIndexRecord(
  bytes: Uint8Array,
  view: DataView,
  start: number,
  fields: IndexRecordFields,
  events: EventList,
  typeCodes: Uint16Array,
  codesStart: number,
): number {
  const count = events.length;
  const keyLength = fields.key?.byteLength ?? 0;
  const length = indexRecordBytes(keyLength, count);
  view.setUint32(start, length, true);
  view.setUint32(start + 4, INDEX_MAGIC, true);
  writeU53(view, start + 8, fields.firstPosition);
  view.setBigUint64(start + 16, fields.aggregateId, true);
  writeU53(view, start + 24, fields.firstVersion);
  writeU53(view, start + 32, fields.generation);
  writeU53(view, start + 40, fields.timestamp);
  writeU53(view, start + 48, fields.syncedEnd);
  view.setUint32(start + 56, fields.dataSegment, true);
  view.setUint32(start + 60, fields.dataOffset, true);
  view.setUint32(start + 68, count, true);
  view.setUint16(start + 72, fields.aggregateTypeCode, true);
  bytes[start + 74] = keyLength;
  bytes[start + 75] = 0;
  if (fields.key) bytes.set(fields.key, start + INDEX_HEADER_BYTES);
  let header = start + INDEX_HEADER_BYTES + keyLength;
  let dataLength = 0;
  for (let e = 0; e < count; e++) {
    const size = events.dataBytes(e);
    const metadataSize = events.metadataBytes(e);
    view.setUint16(header, size, true);
    view.setUint16(header + 2, metadataSize, true);
    view.setUint16(header + 4, typeCodes[codesStart + e]!, true);
    view.setUint16(header + 6, 0, true);
    view.setUint32(header + 8, events.crc(e), true);
    header += EVENT_HEADER_BYTES;
    dataLength += size + metadataSize;
  }
  view.setUint32(start + 64, dataLength, true);
  view.setUint32(header, crc32(bytes.subarray(start, header)), true);
  return header + 4;
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes the index record at `offset` of `bytes` (which starts at file offset `base`) into `out`.
 * Returns undefined when it is a valid record on its own (CRC and structure), else the fault.
 * `checkCrc` false skips the CRC, for bytes whose CRC was checked when they were read or received
 * (a reader's caches); the structure is checked all the same.
 */
export function decodeIndexRecord(
  bytes: Uint8Array,
  view: DataView,
  offset: number,
  out: IndexRecord,
  base = 0,
  checkCrc = true,
): RecordFault | undefined {
  const available = bytes.byteLength - offset;
  if (available < 8) return 'short';
  const length = view.getUint32(offset, true);
  if (view.getUint32(offset + 4, true) !== INDEX_MAGIC) return 'magic';
  if (length < INDEX_FIXED_BYTES || length > MAX_INDEX_RECORD_BYTES) return 'length';
  if (available < length) return 'short';
  const stored = view.getUint32(offset + length - 4, true);
  if (checkCrc && crc32(bytes.subarray(offset, offset + length - 4)) !== stored) return 'crc';
  const keyLength = bytes[offset + 74]!;
  const eventCount = view.getUint32(offset + 68, true);
  if (
    keyLength > LIMITS.maxIdempotencyKeyBytes ||
    eventCount < 1 ||
    eventCount > LIMITS.maxEventsPerBatch ||
    indexRecordBytes(keyLength, eventCount) !== length ||
    bytes[offset + 75] !== 0
  ) {
    return 'field';
  }
  const firstPosition = readU53(view, offset + 8);
  const firstVersion = readU53(view, offset + 24);
  const generation = readU53(view, offset + 32);
  const timestamp = readU53(view, offset + 40);
  const syncedEnd = readU53(view, offset + 48);
  if (firstPosition < 0 || firstVersion < 1 || generation < 1 || timestamp < 0) return 'field';
  // A record can only vouch for bytes written before it.
  if (syncedEnd < 0 || syncedEnd > base + offset) return 'field';
  const aggregateId = view.getBigUint64(offset + 16, true);
  if (aggregateId === 0n) return 'field';
  let idempotencyKey: string | undefined;
  if (keyLength > 0) {
    try {
      idempotencyKey = utf8Decoder.decode(
        bytes.subarray(offset + INDEX_HEADER_BYTES, offset + INDEX_HEADER_BYTES + keyLength),
      );
    } catch {
      return 'field';
    }
  }
  const headersOffset = offset + INDEX_HEADER_BYTES + keyLength;
  let dataLength = 0;
  for (let i = 0; i < eventCount; i++) {
    const header = headersOffset + i * EVENT_HEADER_BYTES;
    if (view.getUint16(header + 6, true) !== 0) return 'field';
    dataLength += view.getUint16(header, true) + view.getUint16(header + 2, true);
  }
  if (dataLength !== view.getUint32(offset + 64, true) || dataLength > LIMITS.maxBatchDataBytes)
    return 'field';
  out.fileOffset = base + offset;
  out.recordLength = length;
  out.firstPosition = firstPosition;
  out.aggregateId = aggregateId;
  out.firstVersion = firstVersion;
  out.generation = generation;
  out.timestamp = timestamp;
  out.syncedEnd = syncedEnd;
  out.dataSegment = view.getUint32(offset + 56, true);
  out.dataOffset = view.getUint32(offset + 60, true);
  out.dataLength = dataLength;
  out.eventCount = eventCount;
  out.aggregateTypeCode = view.getUint16(offset + 72, true);
  out.headersOffset = headersOffset;
  out.idempotencyKey = idempotencyKey;
  return undefined;
}

/** Event i's header fields of a decoded record (i from 0). */
export function eventDataLength(view: DataView, record: IndexRecord, i: number): number {
  return view.getUint16(record.headersOffset + i * EVENT_HEADER_BYTES, true);
}
export function eventMetadataLength(view: DataView, record: IndexRecord, i: number): number {
  return view.getUint16(record.headersOffset + i * EVENT_HEADER_BYTES + 2, true);
}
export function eventTypeCode(view: DataView, record: IndexRecord, i: number): number {
  return view.getUint16(record.headersOffset + i * EVENT_HEADER_BYTES + 4, true);
}
export function eventCrc(view: DataView, record: IndexRecord, i: number): number {
  return view.getUint32(record.headersOffset + i * EVENT_HEADER_BYTES + 8, true);
}

export function emptyIndexRecord(): IndexRecord {
  return {
    fileOffset: 0,
    recordLength: 0,
    firstPosition: 0,
    aggregateId: 0n,
    firstVersion: 0,
    generation: 0,
    timestamp: 0,
    syncedEnd: 0,
    dataSegment: 0,
    dataOffset: 0,
    dataLength: 0,
    eventCount: 0,
    aggregateTypeCode: 0,
    headersOffset: 0,
    idempotencyKey: undefined,
  };
}
