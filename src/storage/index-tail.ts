import type { IndexRecord } from './index-record.js';

/**
 * The index records of a domain past its last checkpoint, kept in memory by the reader: their bytes
 * as the writer wrote them, and per record the columns that searches need. Bounded by the writer's
 * checkpoint interval (checkpointIndexBytes): each checkpoint moves them to the index files on disk
 * and the tail starts again empty.
 *
 *   bytes:   [record 0][record 1]…            (file offsets base + recordOffset[i])
 *   record i: recordOffset firstPosition firstVersion eventCount generation timestamp
 *   instances: aggregate-type code → aggregate id → record numbers, in version order
 */
export class IndexTail {
  /** File offset of bytes[0] (the checkpoint's indexEnd) and the domain position there. */
  readonly base: number;
  readonly basePosition: number;
  bytes = new Uint8Array(4096);
  view = new DataView(this.bytes.buffer);
  length = 0;
  count = 0;
  recordOffset = new Float64Array(64);
  firstPosition = new Float64Array(64);
  firstVersion = new Float64Array(64);
  eventCount = new Uint32Array(64);
  generation = new Float64Array(64);
  timestamp = new Float64Array(64);
  readonly instances = new Map<number, Map<bigint, number[]>>();

  constructor(base: number, basePosition: number) {
    this.base = base;
    this.basePosition = basePosition;
  }

  /** File offset just past the last record. */
  get end(): number {
    return this.base + this.length;
  }

  /** Appends raw record bytes (then `add` each record they hold). */
  appendBytes(bytes: Uint8Array): void {
    if (this.length + bytes.byteLength > this.bytes.byteLength) {
      const grown = new Uint8Array(Math.max(this.bytes.byteLength * 2, this.length + bytes.byteLength));
      grown.set(this.bytes.subarray(0, this.length));
      this.bytes = grown;
      this.view = new DataView(grown.buffer);
    }
    this.bytes.set(bytes, this.length);
    this.length += bytes.byteLength;
  }

  /** Adds a record whose bytes are in `bytes` (record.fileOffset is its file offset). */
  add(record: IndexRecord): void {
    const i = this.count;
    if (i === this.recordOffset.length) this.#grow(i * 2);
    this.recordOffset[i] = record.fileOffset - this.base;
    this.firstPosition[i] = record.firstPosition;
    this.firstVersion[i] = record.firstVersion;
    this.eventCount[i] = record.eventCount;
    this.generation[i] = record.generation;
    this.timestamp[i] = record.timestamp;
    this.count = i + 1;
    let byId = this.instances.get(record.aggregateTypeCode);
    if (!byId) {
      byId = new Map();
      this.instances.set(record.aggregateTypeCode, byId);
    }
    const list = byId.get(record.aggregateId);
    if (list) list.push(i);
    else byId.set(record.aggregateId, [i]);
  }

  /** The last record whose column value is <= value (-1 when none); the columns never decrease. */
  lastAtMost(column: Float64Array, value: number): number {
    let low = 0;
    let high = this.count;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (column[mid]! <= value) low = mid + 1;
      else high = mid;
    }
    return low - 1;
  }

  /** The last record whose column value is < value (-1 when none). */
  lastBelow(column: Float64Array, value: number): number {
    let low = 0;
    let high = this.count;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (column[mid]! < value) low = mid + 1;
      else high = mid;
    }
    return low - 1;
  }

  #grow(capacity: number): void {
    const grow = (column: Float64Array) => {
      const next = new Float64Array(capacity);
      next.set(column);
      return next;
    };
    this.recordOffset = grow(this.recordOffset);
    this.firstPosition = grow(this.firstPosition);
    this.firstVersion = grow(this.firstVersion);
    this.generation = grow(this.generation);
    this.timestamp = grow(this.timestamp);
    const counts = new Uint32Array(capacity);
    counts.set(this.eventCount);
    this.eventCount = counts;
  }
}
