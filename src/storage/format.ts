import { crc32 } from '../crc.js';
import { RingStoreError } from '../errors.js';
import { LIMITS } from '../model/limits.js';
import { STORAGE_NAME_PATTERN } from '../model/names.js';

/**
 * Byte layouts of the files in a domain folder (docs/FORMAT.md is the prose twin of this module).
 * All integers are little-endian. "u53" fields are u64 on disk whose high 11 bits must be zero, so
 * they round-trip through a JS number exactly.
 *
 * Index record (one per batch), total = 72 + keyLength + 8 × eventCount:
 *
 *   0  u32 recordLength     4  u32 magic "RSI\x01"  8  u53 firstPosition   16 u64 aggregateId
 *   24 u53 firstVersion     32 u53 generation       40 u53 timestamp       48 u32 dataSegment
 *   52 u32 dataOffset       56 u32 dataLength       60 u32 eventCount      64 u16 aggTypeCode
 *   66 u8  keyLength        67 u8  reserved (0)     68 key bytes (UTF-8)
 *   then eventCount × [u16 length | u16 typeCode | u32 crc32 of data], then u32 recordCrc
 *
 * Registry record (one per name), total = 20 + nameLength:
 *
 *   0  u32 recordLength     4  u32 magic "RSR\x01"  8  u32 sequence (record ordinal in the file)
 *   12 u8  kind             13 u8  nameLength       14 u16 code            16 name bytes (ASCII)
 *   then u32 recordCrc
 *
 * recordCrc is CRC-32/IEEE of every byte of the record before it, lengths and sequence numbers
 * included, so a zero-filled, truncated or shifted tail never parses as a record.
 */

export const INDEX_FILE = 'index';
export const REGISTRY_FILE = 'registry';

export const INDEX_MAGIC = 0x01495352; // bytes 52 53 49 01: "RSI", format version 1
export const REGISTRY_MAGIC = 0x01525352; // bytes 52 53 52 01: "RSR", format version 1
export const INDEX_FIXED_BYTES = 72;
export const INDEX_HEADER_BYTES = 68;
export const EVENT_HEADER_BYTES = 8;
export const REGISTRY_FIXED_BYTES = 20;
export const MAX_INDEX_RECORD_BYTES =
  INDEX_FIXED_BYTES + LIMITS.maxIdempotencyKeyBytes + EVENT_HEADER_BYTES * LIMITS.maxEventsPerBatch;
export const MAX_NAME_BYTES = 128;

export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/** Segment offsets are u32; a segment may grow past its target by at most one batch. */
export const MAX_SEGMENT_BYTES = 0x7fffffff;

export const KIND_EVENT_TYPE = 1;
export const KIND_AGGREGATE_TYPE = 2;
export type NameKindCode = typeof KIND_EVENT_TYPE | typeof KIND_AGGREGATE_TYPE;

const TWO_32 = 0x1_0000_0000;
const MAX_U53_HIGH = 0x1f_ffff;

export function writeU53(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, value >>> 0, true);
  view.setUint32(offset + 4, Math.floor(value / TWO_32), true);
}

/** Returns -1 when the stored value does not fit a safe integer (a damaged record). */
export function readU53(view: DataView, offset: number): number {
  const high = view.getUint32(offset + 4, true);
  if (high > MAX_U53_HIGH) return -1;
  return high * TWO_32 + view.getUint32(offset, true);
}

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
  dataSegment: number;
  dataOffset: number;
  dataLength: number;
  eventCount: number;
  aggregateTypeCode: number;
  /** Offset within the scanned buffer of the first event header. */
  headersOffset: number;
  idempotencyKey: string | undefined;
}

const latin1 = new TextDecoder('latin1');
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

export function recordCrc(bytes: Uint8Array, start: number, end: number): number {
  return crc32(bytes.subarray(start, end));
}

/**
 * Why a record at some offset is not a valid record. 'short' means the bytes end inside it.
 * Structural checks only: sequence and cross-file checks are the caller's.
 */
export type RecordFault = 'short' | 'length' | 'magic' | 'crc' | 'field';

/**
 * Decodes the index record at `offset` of `bytes` into `out`. Returns undefined when it is a valid
 * record (CRC and structure), else the fault.
 */
export function decodeIndexRecord(
  bytes: Uint8Array,
  view: DataView,
  offset: number,
  out: IndexRecord,
): RecordFault | undefined {
  const available = bytes.byteLength - offset;
  if (available < 8) return 'short';
  const length = view.getUint32(offset, true);
  if (view.getUint32(offset + 4, true) !== INDEX_MAGIC) return 'magic';
  if (length < INDEX_FIXED_BYTES || length > MAX_INDEX_RECORD_BYTES) return 'length';
  if (available < length) return 'short';
  const stored = view.getUint32(offset + length - 4, true);
  if (recordCrc(bytes, offset, offset + length - 4) !== stored) return 'crc';
  const keyLength = bytes[offset + 66]!;
  const eventCount = view.getUint32(offset + 60, true);
  if (
    keyLength > LIMITS.maxIdempotencyKeyBytes ||
    eventCount < 1 ||
    eventCount > LIMITS.maxEventsPerBatch ||
    indexRecordBytes(keyLength, eventCount) !== length ||
    bytes[offset + 67] !== 0
  ) {
    return 'field';
  }
  const firstPosition = readU53(view, offset + 8);
  const firstVersion = readU53(view, offset + 24);
  const generation = readU53(view, offset + 32);
  const timestamp = readU53(view, offset + 40);
  if (firstPosition < 0 || firstVersion < 1 || generation < 1 || timestamp < 0) return 'field';
  const aggregateId = view.getBigUint64(offset + 16, true);
  if (aggregateId === 0n) return 'field';
  let idempotencyKey: string | undefined;
  if (keyLength > 0) {
    try {
      idempotencyKey = utf8Decoder.decode(bytes.subarray(offset + 68, offset + 68 + keyLength));
    } catch {
      return 'field';
    }
  }
  const headersOffset = offset + INDEX_HEADER_BYTES + keyLength;
  let dataLength = 0;
  for (let i = 0; i < eventCount; i++) dataLength += view.getUint16(headersOffset + i * 8, true);
  if (dataLength !== view.getUint32(offset + 56, true)) return 'field';
  out.fileOffset = offset;
  out.recordLength = length;
  out.firstPosition = firstPosition;
  out.aggregateId = aggregateId;
  out.firstVersion = firstVersion;
  out.generation = generation;
  out.timestamp = timestamp;
  out.dataSegment = view.getUint32(offset + 48, true);
  out.dataOffset = view.getUint32(offset + 52, true);
  out.dataLength = dataLength;
  out.eventCount = eventCount;
  out.aggregateTypeCode = view.getUint16(offset + 64, true);
  out.headersOffset = headersOffset;
  out.idempotencyKey = idempotencyKey;
  return undefined;
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
    dataSegment: 0,
    dataOffset: 0,
    dataLength: 0,
    eventCount: 0,
    aggregateTypeCode: 0,
    headersOffset: 0,
    idempotencyKey: undefined,
  };
}

export interface RegistryRecord {
  recordLength: number;
  sequence: number;
  kind: NameKindCode;
  code: number;
  name: string;
}

export function registryRecordBytes(name: string): number {
  return REGISTRY_FIXED_BYTES + name.length;
}

/** Encodes a registry record at `offset` of `out`; names are ASCII by the name allowlists. */
export function encodeRegistryRecord(
  out: Uint8Array,
  offset: number,
  sequence: number,
  kind: NameKindCode,
  code: number,
  name: string,
): number {
  const length = registryRecordBytes(name);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint32(offset, length, true);
  view.setUint32(offset + 4, REGISTRY_MAGIC, true);
  view.setUint32(offset + 8, sequence, true);
  out[offset + 12] = kind;
  out[offset + 13] = name.length;
  view.setUint16(offset + 14, code, true);
  for (let i = 0; i < name.length; i++) out[offset + 16 + i] = name.charCodeAt(i);
  view.setUint32(offset + length - 4, recordCrc(out, offset, offset + length - 4), true);
  return offset + length;
}

export function decodeRegistryRecord(
  bytes: Uint8Array,
  view: DataView,
  offset: number,
): RegistryRecord | RecordFault {
  const available = bytes.byteLength - offset;
  if (available < 8) return 'short';
  const length = view.getUint32(offset, true);
  if (view.getUint32(offset + 4, true) !== REGISTRY_MAGIC) return 'magic';
  if (length < REGISTRY_FIXED_BYTES + 1 || length > REGISTRY_FIXED_BYTES + MAX_NAME_BYTES) return 'length';
  if (available < length) return 'short';
  if (recordCrc(bytes, offset, offset + length - 4) !== view.getUint32(offset + length - 4, true))
    return 'crc';
  const kind = bytes[offset + 12]!;
  const nameLength = bytes[offset + 13]!;
  if (
    (kind !== KIND_EVENT_TYPE && kind !== KIND_AGGREGATE_TYPE) ||
    nameLength + REGISTRY_FIXED_BYTES !== length
  ) {
    return 'field';
  }
  const name = latin1.decode(bytes.subarray(offset + 16, offset + 16 + nameLength));
  return {
    recordLength: length,
    sequence: view.getUint32(offset + 8, true),
    kind,
    code: view.getUint16(offset + 14, true),
    name,
  };
}

function notAStorageName(name: string): RingStoreError {
  return new RingStoreError('INVALID_NAME', `not allowed in a path: ${JSON.stringify(name.slice(0, 80))}`);
}

/** File name of data segment `n` of an aggregate type; the name must pass the allowlist. */
export function segmentFileName(aggregateType: string, segment: number): string {
  if (!STORAGE_NAME_PATTERN.test(aggregateType)) throw notAStorageName(aggregateType);
  return `${aggregateType}.${segment}`;
}

const SEGMENT_FILE = /^([a-z0-9][a-z0-9_-]{0,62})\.(0|[1-9][0-9]{0,9})$/;

export function parseSegmentFileName(name: string): { aggregateType: string; segment: number } | undefined {
  const match = SEGMENT_FILE.exec(name);
  if (!match) return undefined;
  const segment = Number(match[2]);
  return segment <= 0xffffffff ? { aggregateType: match[1]!, segment } : undefined;
}

export function joinPath(dir: string, name: string): string {
  return dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`;
}

/** The folder of a domain; the name must pass the allowlist before it becomes a path. */
export function domainDir(root: string, domain: string): string {
  if (!STORAGE_NAME_PATTERN.test(domain)) throw notAStorageName(domain);
  return joinPath(root, domain);
}

/**
 * Finds the offset of the first structurally valid record strictly after `from`, or -1. Used after a
 * bad record to tell a torn tail (nothing valid follows) from damage inside the durable region.
 */
export function findValidRecordAfter(
  bytes: Uint8Array,
  from: number,
  magic: number,
  isValidAt: (offset: number) => boolean,
): number {
  const pattern = new Uint8Array(4);
  new DataView(pattern.buffer).setUint32(0, magic, true);
  const haystack = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = haystack.indexOf(pattern, from + 5);
  while (at >= 0) {
    const start = at - 4;
    if (isValidAt(start)) return start;
    at = haystack.indexOf(pattern, at + 1);
  }
  return -1;
}
