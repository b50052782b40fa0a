import { crc32 } from '../model/crc.js';
import { type FileIO, readWholeFile, writeWholeFile } from './file-io.js';
import { joinPath, readU53, writeU53 } from './format.js';

/**
 * The `checkpoint` file of a domain: what opening the domain needs to start past the indexed part
 * of the log. One record, replaced whole (written aside as `checkpoint.tmp`, synced, renamed over
 * `checkpoint`, folder synced), so a power loss leaves the old checkpoint or the new one.
 *
 *   0  u32 recordLength     4  magic "RSC" 2        8  u53 sequence (1, 2, … per write)
 *   16 u53 registryEnd      24 u53 indexEnd         32 u53 nextPosition    40 u53 lastGeneration
 *   48 u53 lastTimestamp    56 u53 positionEntries  64 u32 nextRunId       68 u16 runCount
 *   70 u16 dataEndCount
 *   72 runCount × 24:      u32 runId, u32 reserved (0), u53 entryCount, u53 indexTo   (oldest first)
 *      dataEndCount × 16:  u16 aggregateTypeCode, u16 reserved (0), u32 segment, u53 end
 *      u32 crc of every byte before it
 *
 * Meaning: index records in [0, indexEnd) are synced and are all in the listed runs and (sparsely)
 * in the first positionEntries entries of `positions`; the scan state after them is nextPosition,
 * lastGeneration, lastTimestamp and the data ends; registry bytes [0, registryEnd) were synced.
 *
 * A valid checkpoint also has: sequence >= 1; runs in strictly increasing indexTo, none past
 * indexEnd; distinct run ids, each below nextRunId; distinct aggregate-type codes in the data ends.
 * encodeCheckpoint refuses a checkpoint that breaks these, so every checkpoint written reads back.
 */
export const CHECKPOINT_FILE = 'checkpoint';
export const CHECKPOINT_TMP_FILE = 'checkpoint.tmp';

const CHECKPOINT_MAGIC = 0x02435352; // "RSC" 2, little-endian
const FIXED_BYTES = 72;
const RUN_BYTES = 24;
const DATA_END_BYTES = 16;
const CRC_BYTES = 4;
const MAX_U16 = 0xffff;
const MAX_U32 = 0xffff_ffff;

export interface CheckpointRun {
  runId: number;
  entryCount: number;
  indexTo: number;
}

export interface CheckpointDataEnd {
  aggregateTypeCode: number;
  segment: number;
  end: number;
}

export interface Checkpoint {
  sequence: number;
  registryEnd: number;
  indexEnd: number;
  nextPosition: number;
  lastGeneration: number;
  lastTimestamp: number;
  positionEntries: number;
  nextRunId: number;
  runs: CheckpointRun[];
  dataEnds: CheckpointDataEnd[];
}

function checkpointBytes(runCount: number, dataEndCount: number): number {
  return FIXED_BYTES + runCount * RUN_BYTES + dataEndCount * DATA_END_BYTES + CRC_BYTES;
}

function isUint(value: number, max: number): boolean {
  return Number.isSafeInteger(value) && value >= 0 && value <= max;
}

const U53_FIELDS = [
  'sequence',
  'registryEnd',
  'indexEnd',
  'nextPosition',
  'lastGeneration',
  'lastTimestamp',
  'positionEntries',
] as const;

/** Why `c` is not a valid checkpoint, or undefined when it is (the rules of the module comment). */
function checkpointFault(c: Checkpoint): string | undefined {
  for (const name of U53_FIELDS) {
    if (!isUint(c[name], Number.MAX_SAFE_INTEGER)) return `${name} is not a u53`;
  }
  if (c.sequence < 1) return 'sequence is 0';
  if (!isUint(c.nextRunId, MAX_U32)) return 'nextRunId is not a u32';
  if (c.runs.length > MAX_U16) return 'more than 65535 runs';
  if (c.dataEnds.length > MAX_U16) return 'more than 65535 data ends';
  const runIds = new Set<number>();
  let previousIndexTo = -1;
  for (const [i, run] of c.runs.entries()) {
    if (!isUint(run.runId, MAX_U32)) return `run ${i}: runId is not a u32`;
    if (!isUint(run.entryCount, Number.MAX_SAFE_INTEGER)) return `run ${i}: entryCount is not a u53`;
    if (!isUint(run.indexTo, Number.MAX_SAFE_INTEGER)) return `run ${i}: indexTo is not a u53`;
    if (run.runId >= c.nextRunId) return `run ${i}: runId ${run.runId} is not below nextRunId ${c.nextRunId}`;
    if (runIds.has(run.runId)) return `run ${i}: runId ${run.runId} is listed twice`;
    runIds.add(run.runId);
    if (run.indexTo <= previousIndexTo) return `run ${i}: indexTo does not increase`;
    if (run.indexTo > c.indexEnd) return `run ${i}: indexTo ${run.indexTo} is past indexEnd ${c.indexEnd}`;
    previousIndexTo = run.indexTo;
  }
  const typeCodes = new Set<number>();
  for (const [i, dataEnd] of c.dataEnds.entries()) {
    if (!isUint(dataEnd.aggregateTypeCode, MAX_U16)) return `data end ${i}: aggregateTypeCode is not a u16`;
    if (!isUint(dataEnd.segment, MAX_U32)) return `data end ${i}: segment is not a u32`;
    if (!isUint(dataEnd.end, Number.MAX_SAFE_INTEGER)) return `data end ${i}: end is not a u53`;
    if (typeCodes.has(dataEnd.aggregateTypeCode)) {
      return `data end ${i}: aggregate type ${dataEnd.aggregateTypeCode} is listed twice`;
    }
    typeCodes.add(dataEnd.aggregateTypeCode);
  }
  return undefined;
}

/** Encodes a checkpoint; a RangeError when it is not a valid one (it would not read back). */
export function encodeCheckpoint(c: Checkpoint): Uint8Array {
  const fault = checkpointFault(c);
  if (fault) throw new RangeError(`invalid checkpoint: ${fault}`);
  const length = checkpointBytes(c.runs.length, c.dataEnds.length);
  const bytes = new Uint8Array(length);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, length, true);
  view.setUint32(4, CHECKPOINT_MAGIC, true);
  writeU53(view, 8, c.sequence);
  writeU53(view, 16, c.registryEnd);
  writeU53(view, 24, c.indexEnd);
  writeU53(view, 32, c.nextPosition);
  writeU53(view, 40, c.lastGeneration);
  writeU53(view, 48, c.lastTimestamp);
  writeU53(view, 56, c.positionEntries);
  view.setUint32(64, c.nextRunId, true);
  view.setUint16(68, c.runs.length, true);
  view.setUint16(70, c.dataEnds.length, true);
  let at = FIXED_BYTES;
  for (const run of c.runs) {
    view.setUint32(at, run.runId, true);
    writeU53(view, at + 8, run.entryCount);
    writeU53(view, at + 16, run.indexTo);
    at += RUN_BYTES;
  }
  for (const dataEnd of c.dataEnds) {
    view.setUint16(at, dataEnd.aggregateTypeCode, true);
    view.setUint32(at + 4, dataEnd.segment, true);
    writeU53(view, at + 8, dataEnd.end);
    at += DATA_END_BYTES;
  }
  view.setUint32(at, crc32(bytes.subarray(0, at)), true);
  return bytes;
}

/** The checkpoint, or a reason string when the bytes are not a valid one. Never throws. */
export function decodeCheckpoint(bytes: Uint8Array): Checkpoint | string {
  if (bytes.byteLength < checkpointBytes(0, 0)) return `checkpoint is ${bytes.byteLength} bytes, too short`;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getUint32(0, true);
  if (length !== bytes.byteLength)
    return `checkpoint length ${length} but the file holds ${bytes.byteLength} bytes`;
  if (view.getUint32(4, true) !== CHECKPOINT_MAGIC) return 'checkpoint magic is wrong';
  const runCount = view.getUint16(68, true);
  const dataEndCount = view.getUint16(70, true);
  if (checkpointBytes(runCount, dataEndCount) !== length) {
    return `checkpoint length ${length} does not fit ${runCount} runs and ${dataEndCount} data ends`;
  }
  if (crc32(bytes.subarray(0, length - CRC_BYTES)) !== view.getUint32(length - CRC_BYTES, true)) {
    return 'checkpoint crc mismatch';
  }
  const runs: CheckpointRun[] = [];
  let at = FIXED_BYTES;
  for (let i = 0; i < runCount; i++, at += RUN_BYTES) {
    if (view.getUint32(at + 4, true) !== 0) return `checkpoint run ${i}: reserved bytes are not zero`;
    runs.push({
      runId: view.getUint32(at, true),
      entryCount: readU53(view, at + 8),
      indexTo: readU53(view, at + 16),
    });
  }
  const dataEnds: CheckpointDataEnd[] = [];
  for (let i = 0; i < dataEndCount; i++, at += DATA_END_BYTES) {
    if (view.getUint16(at + 2, true) !== 0) return `checkpoint data end ${i}: reserved bytes are not zero`;
    dataEnds.push({
      aggregateTypeCode: view.getUint16(at, true),
      segment: view.getUint32(at + 4, true),
      end: readU53(view, at + 8),
    });
  }
  const checkpoint: Checkpoint = {
    sequence: readU53(view, 8),
    registryEnd: readU53(view, 16),
    indexEnd: readU53(view, 24),
    nextPosition: readU53(view, 32),
    lastGeneration: readU53(view, 40),
    lastTimestamp: readU53(view, 48),
    positionEntries: readU53(view, 56),
    nextRunId: view.getUint32(64, true),
    runs,
    dataEnds,
  };
  // readU53 gives -1 for a value past 2^53 - 1, which checkpointFault reports as not a u53.
  const fault = checkpointFault(checkpoint);
  return fault === undefined ? checkpoint : `checkpoint ${fault}`;
}

/** undefined when there is no checkpoint file; a reason string when it is damaged. */
export function readCheckpoint(io: FileIO, folder: string): Checkpoint | string | undefined {
  const path = joinPath(folder, CHECKPOINT_FILE);
  if (!io.exists(path)) return undefined;
  return decodeCheckpoint(readWholeFile(io, path));
}

/**
 * Crash-safe replace: writes `checkpoint.tmp` (a leftover one is emptied first), fdatasyncs it,
 * renames it over `checkpoint` and syncs the folder. A power loss at any step leaves the old
 * checkpoint (or none, if there was none) or the new one; once this returns, the new one.
 */
export function writeCheckpoint(io: FileIO, folder: string, c: Checkpoint): void {
  const bytes = encodeCheckpoint(c);
  const aside = joinPath(folder, CHECKPOINT_TMP_FILE);
  writeWholeFile(io, aside, bytes);
  io.rename(aside, joinPath(folder, CHECKPOINT_FILE));
  io.fsyncDir(folder);
}
