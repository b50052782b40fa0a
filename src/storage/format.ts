import { RingStoreError } from '../errors.js';
import { STORAGE_NAME_PATTERN } from '../model/names.js';

/**
 * What every file of a store directory shares (docs/FORMAT.md is the prose twin): the format
 * version, file names, the u53 integer encoding and the preallocation extents. The record layouts
 * live beside their codecs: index-record.ts, registry-record.ts, segment-header.ts.
 *
 *   <dir>/<domain>/registry           registry records   "RSR" 2
 *   <dir>/<domain>/index              index records      "RSI" 2, then zeros (preallocated)
 *   <dir>/<domain>/<aggtype>.<n>      segment header     "RSD" 2, payloads, then zeros
 *   <dir>/<domain>/<file>.cut-<at>    bytes recovery moved aside from <file> at offset <at>
 *   <dir>/<domain>/<file>.cut-<at>.<n>  the same, when an earlier recovery already used the name
 *
 * All integers are little-endian. "u53" fields are u64 on disk whose high 11 bits must be zero, so
 * they round-trip through a JS number exactly.
 */
export const FORMAT_VERSION = 2;

export const INDEX_FILE = 'index';
export const REGISTRY_FILE = 'registry';

/** Magic numbers: three ASCII letters and the format version byte, read as a little-endian u32. */
export const INDEX_MAGIC = magic('RSI', FORMAT_VERSION);
export const REGISTRY_MAGIC = magic('RSR', FORMAT_VERSION);
export const SEGMENT_MAGIC = magic('RSD', FORMAT_VERSION);
/** The magics of format version 1, recognised only to refuse such a store with a clear error. */
export const LEGACY_MAGICS: readonly number[] = [magic('RSI', 1), magic('RSR', 1)];

export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/** Segment offsets are u32; a segment may grow past its target by at most one batch. */
export const MAX_SEGMENT_BYTES = 0x7fffffff;
/**
 * Index and data files grow by whole extents of zeros written ahead of the records, so that a
 * commit's fdatasync finds no size change and no block allocation to journal (docs/FORMAT.md,
 * "Preallocation").
 */
export const DEFAULT_INDEX_EXTENT_BYTES = 1024 * 1024;
export const DEFAULT_DATA_EXTENT_BYTES = 4 * 1024 * 1024;

export const KIND_EVENT_TYPE = 1;
export const KIND_AGGREGATE_TYPE = 2;
export type NameKindCode = typeof KIND_EVENT_TYPE | typeof KIND_AGGREGATE_TYPE;

/**
 * Why a record at some offset is not a valid record. 'short' means the bytes end inside it.
 * Structural checks only: sequence and cross-file checks are the caller's.
 */
export type RecordFault = 'short' | 'length' | 'magic' | 'crc' | 'field';

function magic(letters: string, version: number): number {
  return (
    (letters.charCodeAt(0) |
      (letters.charCodeAt(1) << 8) |
      (letters.charCodeAt(2) << 16) |
      (version << 24)) >>>
    0
  );
}

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

/**
 * Name of the file that holds the bytes recovery moved aside from `file`, starting at `offset`;
 * `n` (from 1) tells apart later cuts at the same place, which must not overwrite earlier ones.
 */
export function quarantineFileName(file: string, offset: number, n = 0): string {
  return n === 0 ? `${file}.cut-${offset}` : `${file}.cut-${offset}.${n}`;
}

export function joinPath(dir: string, name: string): string {
  return dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`;
}

/** The folder of a domain; the name must pass the allowlist before it becomes a path. */
export function domainDir(root: string, domain: string): string {
  if (!STORAGE_NAME_PATTERN.test(domain)) throw notAStorageName(domain);
  return joinPath(root, domain);
}

export function parentDir(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  const at = trimmed.lastIndexOf('/');
  if (at < 0) return '.';
  return at === 0 ? '/' : trimmed.slice(0, at);
}

/** One past the last non-zero byte of bytes[from…], or `from` when they are all zero. */
export function endOfNonZero(bytes: Uint8Array, from: number): number {
  let end = bytes.byteLength;
  while (end > from && bytes[end - 1] === 0) end--;
  return end;
}

/**
 * Finds the offset of the first structurally valid record strictly after `from`, or -1. Used after a
 * bad record to find records that vouch for the bytes before them (docs/FORMAT.md, "Recovery").
 */
export function findValidRecordAfter(
  bytes: Uint8Array,
  from: number,
  magicNumber: number,
  isValidAt: (offset: number) => boolean,
): number {
  const pattern = new Uint8Array(4);
  new DataView(pattern.buffer).setUint32(0, magicNumber, true);
  const haystack = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = haystack.indexOf(pattern, from + 5);
  while (at >= 0) {
    const start = at - 4;
    if (isValidAt(start)) return start;
    at = haystack.indexOf(pattern, at + 1);
  }
  return -1;
}

/** True when `bytes` start with the magic of a format-version-1 record. */
export function isLegacyFormat(bytes: Uint8Array): boolean {
  if (bytes.byteLength < 8) return false;
  const found = new DataView(bytes.buffer, bytes.byteOffset, 8).getUint32(4, true);
  return LEGACY_MAGICS.includes(found);
}
