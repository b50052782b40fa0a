import {
  crcMismatch,
  ERROR_CODES,
  type ErrorCode,
  isErrorCode,
  RingStoreError,
  versionConflict,
} from '../errors.js';
import type { AppendOutcome } from '../storage/types.js';
import type { Durability, ExpectedVersion, PutResult } from '../types.js';
import { RECORD } from './ring-layout.js';

/**
 * The result fields of a record header (ring-layout.ts RECORD): written by the writer thread (or by
 * the CRC stage for a rejection) with plain writes before the state word that publishes them, and
 * read by the producer after it saw that state.
 */

const DURABILITY_CODES: readonly Durability[] = ['none', 'write', 'fsync'];

/** 1 + index into ERROR_CODES; 0 means success. */
export function errorCodeNumber(code: ErrorCode): number {
  return ERROR_CODES.indexOf(code) + 1;
}

export function errorCodeFromNumber(value: number): ErrorCode {
  return ERROR_CODES[value - 1] ?? 'INTERNAL';
}

export function writeRejection(view: DataView, record: number, code: ErrorCode, detail = 0): void {
  view.setInt32(record + RECORD.errorCode, errorCodeNumber(code), true);
  view.setInt32(record + RECORD.errorDetail, detail, true);
}

/** Writes one storage outcome into a record's result fields (before its state becomes final). */
export function writeOutcome(view: DataView, record: number, outcome: AppendOutcome): void {
  if (outcome.ok) {
    const { result } = outcome;
    view.setInt32(record + RECORD.errorCode, 0, true);
    view.setUint8(record + RECORD.replayed, result.replayed ? 1 : 0);
    view.setUint8(record + RECORD.durability, DURABILITY_CODES.indexOf(result.durability));
    view.setFloat64(record + RECORD.firstVersion, result.firstVersion, true);
    view.setFloat64(record + RECORD.lastVersion, result.lastVersion, true);
    view.setFloat64(record + RECORD.firstPosition, result.firstPosition, true);
    view.setFloat64(record + RECORD.generation, result.generation, true);
    view.setFloat64(record + RECORD.timestamp, result.timestamp, true);
    return;
  }
  const { code, actualVersion, index } = outcome.error;
  writeRejection(view, record, isErrorCode(code) ? code : 'INTERNAL', typeof index === 'number' ? index : 0);
  view.setFloat64(record + RECORD.actualVersion, typeof actualVersion === 'number' ? actualVersion : 0, true);
}

/** The error a record carries, or undefined when it succeeded. */
export function readRecordError(
  view: DataView,
  record: number,
  expected: ExpectedVersion,
): RingStoreError | undefined {
  const value = view.getInt32(record + RECORD.errorCode, true);
  if (value === 0) return undefined;
  const code = errorCodeFromNumber(value);
  if (code === 'VERSION_CONFLICT') {
    return versionConflict(view.getFloat64(record + RECORD.actualVersion, true), expected);
  }
  if (code === 'CRC_MISMATCH') {
    const index = view.getInt32(record + RECORD.errorDetail, true);
    return crcMismatch(index);
  }
  return new RingStoreError(code);
}

export function readRecordResult(view: DataView, record: number): PutResult {
  return {
    firstVersion: view.getFloat64(record + RECORD.firstVersion, true),
    lastVersion: view.getFloat64(record + RECORD.lastVersion, true),
    firstPosition: view.getFloat64(record + RECORD.firstPosition, true),
    generation: view.getFloat64(record + RECORD.generation, true),
    timestamp: view.getFloat64(record + RECORD.timestamp, true),
    durability: DURABILITY_CODES[view.getUint8(record + RECORD.durability)] ?? 'none',
    replayed: view.getUint8(record + RECORD.replayed) === 1,
  };
}
