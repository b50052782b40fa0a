import { BlockCache } from './block-cache.js';
import type { Checkpoint } from './checkpoint.js';
import { POSITIONS_FILE } from './domain-index.js';
import type { FileIO } from './file-io.js';
import { joinPath } from './format.js';
import type { IndexRecord } from './index-record.js';
import { bloomFileName, InstanceBloom } from './instance-bloom.js';
import { InstanceRun, runFileName } from './instance-run.js';
import { PositionIndex } from './position-index.js';

/** A problem with a derived index file: the log is intact, the file is rebuilt from it. */
export interface IndexProblem {
  file: string;
  offset: number;
  reason: string;
}

/**
 * The log's index records as verify reads them, kept in columns (about 55 bytes per batch) so that
 * the index files can be checked against them.
 */
export class RecordColumns {
  count = 0;
  offset = new Float64Array(1024);
  firstPosition = new Float64Array(1024);
  firstVersion = new Float64Array(1024);
  generation = new Float64Array(1024);
  timestamp = new Float64Array(1024);
  eventCount = new Uint32Array(1024);
  aggregateType = new Uint16Array(1024);
  hasKey = new Uint8Array(1024);
  aggregateId = new BigUint64Array(1024);

  add(record: IndexRecord): void {
    if (this.count === this.offset.length) this.#grow();
    const i = this.count++;
    this.offset[i] = record.fileOffset;
    this.firstPosition[i] = record.firstPosition;
    this.firstVersion[i] = record.firstVersion;
    this.generation[i] = record.generation;
    this.timestamp[i] = record.timestamp;
    this.eventCount[i] = record.eventCount;
    this.aggregateType[i] = record.aggregateTypeCode;
    this.hasKey[i] = record.idempotencyKey === undefined ? 0 : 1;
    this.aggregateId[i] = record.aggregateId;
  }

  /** The record number at a file offset, or -1. */
  at(offset: number): number {
    let low = 0;
    let high = this.count;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.offset[mid]! < offset) low = mid + 1;
      else high = mid;
    }
    return low < this.count && this.offset[low] === offset ? low : -1;
  }

  #grow(): void {
    const capacity = this.offset.length * 2;
    const grow = <T extends Float64Array | Uint32Array | Uint16Array | Uint8Array | BigUint64Array>(
      column: T,
    ): T => {
      const next = new (column.constructor as new (length: number) => T)(capacity);
      next.set(column as never);
      return next;
    };
    this.offset = grow(this.offset);
    this.firstPosition = grow(this.firstPosition);
    this.firstVersion = grow(this.firstVersion);
    this.generation = grow(this.generation);
    this.timestamp = grow(this.timestamp);
    this.eventCount = grow(this.eventCount);
    this.aggregateType = grow(this.aggregateType);
    this.hasKey = grow(this.hasKey);
    this.aggregateId = grow(this.aggregateId);
  }
}

/**
 * Checks a domain's derived index files against its log (`records`, every index record that stays):
 * the checkpoint decodes and agrees with the log at its indexEnd; every run's blocks pass their
 * CRCs, and its entries are exactly the batches of its index range with their fields; every
 * position entry names a record with its position, generation and timestamp.
 */
export function verifyIndexFiles(
  io: FileIO,
  dir: string,
  domain: string,
  records: RecordColumns,
  indexEnd: number,
  checkpoint: Checkpoint | string | undefined,
): IndexProblem[] {
  const folder = joinPath(dir, domain);
  const problems: IndexProblem[] = [];
  if (checkpoint === undefined) return problems;
  const checkpointFile = `${domain}/checkpoint`;
  if (typeof checkpoint === 'string') return [{ file: checkpointFile, offset: 0, reason: checkpoint }];
  const covered = checkpoint.indexEnd === indexEnd ? records.count : records.at(checkpoint.indexEnd);
  if (covered < 0) {
    return [{ file: checkpointFile, offset: 0, reason: 'indexEnd is not a record boundary of the index' }];
  }
  const nextPosition =
    covered === records.count
      ? records.count === 0
        ? 0
        : records.firstPosition[covered - 1]! + records.eventCount[covered - 1]!
      : records.firstPosition[covered]!;
  if (checkpoint.nextPosition !== nextPosition) {
    return [{ file: checkpointFile, offset: 0, reason: 'nextPosition does not match the log' }];
  }
  const cache = new BlockCache(0);
  const seen = new Uint8Array(covered);
  for (const info of checkpoint.runs) {
    const file = `${domain}/${runFileName(info.runId)}`;
    let run: InstanceRun | undefined;
    try {
      run = InstanceRun.open(io, joinPath(folder, runFileName(info.runId)), cache, file);
      let n = 0;
      for (const entry of run.entries()) {
        n++;
        const i = records.at(entry.indexOffset);
        if (
          i < 0 ||
          i >= covered ||
          seen[i] === 1 ||
          records.aggregateType[i] !== entry.aggregateTypeCode ||
          records.aggregateId[i] !== entry.aggregateId ||
          records.firstVersion[i] !== entry.firstVersion ||
          records.eventCount[i] !== entry.eventCount ||
          records.generation[i] !== entry.generation ||
          (records.hasKey[i] === 1) !== entry.hasKey
        ) {
          problems.push({
            file,
            offset: 0,
            reason: `entry for index offset ${entry.indexOffset} does not match the log`,
          });
          break;
        }
        seen[i] = 1;
      }
      if (n !== info.entryCount)
        problems.push({ file, offset: 0, reason: 'entry count differs from the checkpoint' });
      problems.push(...checkBloom(io, folder, domain, info.runId, run, cache));
    } catch (err) {
      problems.push({ file, offset: 0, reason: (err as Error).message });
    } finally {
      run?.close();
    }
  }
  if (problems.length === 0 && seen.indexOf(0) >= 0) {
    problems.push({
      file: checkpointFile,
      offset: 0,
      reason: `the runs miss the batch at index offset ${records.offset[seen.indexOf(0)]}`,
    });
  }
  if (checkpoint.positionEntries > 0) {
    const file = `${domain}/${POSITIONS_FILE}`;
    let positions: PositionIndex | undefined;
    try {
      positions = PositionIndex.open(
        io,
        joinPath(folder, POSITIONS_FILE),
        cache,
        checkpoint.positionEntries,
        file,
      );
      for (let e = 0; e < checkpoint.positionEntries; e++) {
        const entry = positions.entry(e);
        const i = records.at(entry.indexOffset);
        if (
          i < 0 ||
          i >= covered ||
          records.firstPosition[i] !== entry.firstPosition ||
          records.generation[i] !== entry.generation ||
          records.timestamp[i] !== entry.timestamp
        ) {
          problems.push({ file, offset: e * 64, reason: 'entry does not match the log' });
          break;
        }
      }
    } catch (err) {
      problems.push({ file, offset: 0, reason: (err as Error).message });
    } finally {
      positions?.close();
    }
  }
  return problems;
}

/** The run's filter exists, passes its CRCs and admits every instance of the run. */
function checkBloom(
  io: FileIO,
  folder: string,
  domain: string,
  runId: number,
  run: InstanceRun,
  cache: BlockCache,
): IndexProblem[] {
  const file = `${domain}/${bloomFileName(runId)}`;
  const bloom = InstanceBloom.open(io, joinPath(folder, bloomFileName(runId)), cache, file);
  if (!bloom) return [{ file, offset: 0, reason: 'the filter of the run is missing or not whole blocks' }];
  try {
    const damaged = bloom.firstDamagedBlock();
    if (damaged >= 0) return [{ file, offset: damaged, reason: 'filter block fails its CRC' }];
    for (const entry of run.entries()) {
      if (!bloom.mayContain(entry.aggregateTypeCode, entry.aggregateId)) {
        return [
          { file, offset: 0, reason: `the filter leaves out instance ${entry.aggregateId} of its run` },
        ];
      }
    }
    return [];
  } finally {
    bloom.close();
  }
}
