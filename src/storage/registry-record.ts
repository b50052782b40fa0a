import { crc32 } from '../model/crc.js';
import {
  KIND_AGGREGATE_TYPE,
  KIND_EVENT_TYPE,
  type NameKindCode,
  REGISTRY_MAGIC,
  type RecordFault,
  readU53,
  writeU53,
} from './format.js';

/**
 * The registry record: one per registered name (docs/FORMAT.md, "Registry record").
 *
 *   0  u32 recordLength     4  u32 magic "RSR" 2    8  u32 sequence (record ordinal in the file)
 *   12 u8  kind             13 u8  nameLength       14 u16 code            16 u53 syncedEnd
 *   24 name bytes (ASCII), then u32 recordCrc of every byte before it
 *
 * `syncedEnd`: the registry bytes the writer knew to be durable when it wrote the record (see the
 * index record).
 */
export const REGISTRY_FIXED_BYTES = 28;
export const MAX_NAME_BYTES = 128;

export interface RegistryRecord {
  recordLength: number;
  sequence: number;
  kind: NameKindCode;
  code: number;
  syncedEnd: number;
  name: string;
}

export function registryRecordBytes(name: string): number {
  return REGISTRY_FIXED_BYTES + name.length;
}

/** Encodes a registry record at `offset` of `out`; names are ASCII by the name allowlists. */
export function encodeRegistryRecord(
  out: Uint8Array,
  offset: number,
  record: Omit<RegistryRecord, 'recordLength'>,
): number {
  const { name } = record;
  const length = registryRecordBytes(name);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint32(offset, length, true);
  view.setUint32(offset + 4, REGISTRY_MAGIC, true);
  view.setUint32(offset + 8, record.sequence, true);
  out[offset + 12] = record.kind;
  out[offset + 13] = name.length;
  view.setUint16(offset + 14, record.code, true);
  writeU53(view, offset + 16, record.syncedEnd);
  for (let i = 0; i < name.length; i++) out[offset + 24 + i] = name.charCodeAt(i);
  view.setUint32(offset + length - 4, crc32(out.subarray(offset, offset + length - 4)), true);
  return offset + length;
}

const latin1 = new TextDecoder('latin1');

/** Decodes the record at `offset` of `bytes` (which starts at file offset `base`). */
export function decodeRegistryRecord(
  bytes: Uint8Array,
  view: DataView,
  offset: number,
  base = 0,
): RegistryRecord | RecordFault {
  const available = bytes.byteLength - offset;
  if (available < 8) return 'short';
  const length = view.getUint32(offset, true);
  if (view.getUint32(offset + 4, true) !== REGISTRY_MAGIC) return 'magic';
  if (length < REGISTRY_FIXED_BYTES + 1 || length > REGISTRY_FIXED_BYTES + MAX_NAME_BYTES) return 'length';
  if (available < length) return 'short';
  if (crc32(bytes.subarray(offset, offset + length - 4)) !== view.getUint32(offset + length - 4, true))
    return 'crc';
  const kind = bytes[offset + 12]!;
  const nameLength = bytes[offset + 13]!;
  const syncedEnd = readU53(view, offset + 16);
  if (
    (kind !== KIND_EVENT_TYPE && kind !== KIND_AGGREGATE_TYPE) ||
    nameLength + REGISTRY_FIXED_BYTES !== length ||
    syncedEnd < 0 ||
    syncedEnd > base + offset
  ) {
    return 'field';
  }
  const name = latin1.decode(bytes.subarray(offset + 24, offset + 24 + nameLength));
  return {
    recordLength: length,
    sequence: view.getUint32(offset + 8, true),
    kind,
    code: view.getUint16(offset + 14, true),
    syncedEnd,
    name,
  };
}
