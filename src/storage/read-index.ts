import { EVENT_HEADER_BYTES, type IndexRecord } from './index-record.js';
import { NameRegistry } from './name-registry.js';
import { type IndexScanState, newIndexScanState } from './scan.js';

/**
 * The in-memory read index of one domain, built from its index file and extended after each
 * commit. It is columnar: one typed-array column per field, per batch and per event (the event
 * columns are indexed by domain position), so a million events cost ~16 bytes each and no objects.
 *
 *   batch b:   firstPosition firstVersion generation timestamp aggregateId aggregateTypeCode
 *              dataSegment dataOffset eventCount
 *   event p:   batch typeCode length (data + metadata) metadataLength crc offsetInBatchData
 *
 * Instances map to the list of their batch indices, in version order.
 */
export class DomainReadIndex {
  readonly name: string;
  readonly registry = new NameRegistry();
  readonly scan: IndexScanState;
  /** Offset in the index file up to which records are applied. */
  indexEnd = 0;
  batchCount = 0;
  batchFirstPosition = new Float64Array(64);
  batchFirstVersion = new Float64Array(64);
  batchGeneration = new Float64Array(64);
  batchTimestamp = new Float64Array(64);
  batchAggregateId = new BigUint64Array(64);
  batchAggregateType = new Uint16Array(64);
  batchSegment = new Uint32Array(64);
  batchDataOffset = new Uint32Array(64);
  batchEventCount = new Uint32Array(64);
  eventBatch = new Uint32Array(256);
  eventType = new Uint16Array(256);
  /** Stored bytes of the event: its data, then its metadata. */
  eventLength = new Uint32Array(256);
  eventMetadataLength = new Uint16Array(256);
  eventCrc = new Uint32Array(256);
  eventOffset = new Uint32Array(256);
  /** Per aggregate-type code: aggregate id → batch indices. */
  readonly instances: Map<bigint, number[]>[] = [];

  constructor(name: string) {
    this.name = name;
    this.scan = newIndexScanState(this.registry);
  }

  /** Events in the domain: the next position. */
  get eventCount(): number {
    return this.scan.nextPosition;
  }

  /** Appends one accepted index record (the scan's onRecord callback). */
  readonly addRecord = (record: IndexRecord, _bytes: Uint8Array, view: DataView): void => {
    const b = this.batchCount;
    if (b === this.batchFirstPosition.length) this.#growBatches(b * 2);
    this.batchFirstPosition[b] = record.firstPosition;
    this.batchFirstVersion[b] = record.firstVersion;
    this.batchGeneration[b] = record.generation;
    this.batchTimestamp[b] = record.timestamp;
    this.batchAggregateId[b] = record.aggregateId;
    this.batchAggregateType[b] = record.aggregateTypeCode;
    this.batchSegment[b] = record.dataSegment;
    this.batchDataOffset[b] = record.dataOffset;
    this.batchEventCount[b] = record.eventCount;
    this.batchCount = b + 1;

    const first = record.firstPosition;
    const count = record.eventCount;
    if (first + count > this.eventBatch.length)
      this.#growEvents(Math.max(this.eventBatch.length * 2, first + count));
    let header = record.headersOffset;
    let offset = 0;
    for (let i = 0; i < count; i++) {
      const p = first + i;
      const metadataLength = view.getUint16(header + 2, true);
      const length = view.getUint16(header, true) + metadataLength;
      this.eventBatch[p] = b;
      this.eventLength[p] = length;
      this.eventMetadataLength[p] = metadataLength;
      this.eventType[p] = view.getUint16(header + 4, true);
      this.eventCrc[p] = view.getUint32(header + 8, true);
      this.eventOffset[p] = offset;
      offset += length;
      header += EVENT_HEADER_BYTES;
    }

    let byId = this.instances[record.aggregateTypeCode];
    if (!byId) {
      byId = new Map();
      this.instances[record.aggregateTypeCode] = byId;
    }
    const list = byId.get(record.aggregateId);
    if (list) list.push(b);
    else byId.set(record.aggregateId, [b]);
  };

  /** First batch index whose value in `column` is greater than `value` (columns never decrease). */
  firstBatchAbove(column: Float64Array, value: number): number {
    let low = 0;
    let high = this.batchCount;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (column[mid]! > value) high = mid;
      else low = mid + 1;
    }
    return low;
  }

  /** First batch index whose value in `column` is at least `value`. */
  firstBatchAtLeast(column: Float64Array, value: number): number {
    let low = 0;
    let high = this.batchCount;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (column[mid]! >= value) high = mid;
      else low = mid + 1;
    }
    return low;
  }

  /** The position at which batch `b` starts, or the event count past the last batch. */
  positionOfBatch(b: number): number {
    return b < this.batchCount ? this.batchFirstPosition[b]! : this.eventCount;
  }

  #growBatches(capacity: number): void {
    this.batchFirstPosition = grow(this.batchFirstPosition, capacity);
    this.batchFirstVersion = grow(this.batchFirstVersion, capacity);
    this.batchGeneration = grow(this.batchGeneration, capacity);
    this.batchTimestamp = grow(this.batchTimestamp, capacity);
    this.batchAggregateId = grow(this.batchAggregateId, capacity);
    this.batchAggregateType = grow(this.batchAggregateType, capacity);
    this.batchSegment = grow(this.batchSegment, capacity);
    this.batchDataOffset = grow(this.batchDataOffset, capacity);
    this.batchEventCount = grow(this.batchEventCount, capacity);
  }

  #growEvents(capacity: number): void {
    this.eventBatch = grow(this.eventBatch, capacity);
    this.eventType = grow(this.eventType, capacity);
    this.eventLength = grow(this.eventLength, capacity);
    this.eventMetadataLength = grow(this.eventMetadataLength, capacity);
    this.eventCrc = grow(this.eventCrc, capacity);
    this.eventOffset = grow(this.eventOffset, capacity);
  }
}

type Column = Float64Array | BigUint64Array | Uint32Array | Uint16Array;

function grow<T extends Column>(column: T, capacity: number): T {
  const Ctor = column.constructor as new (length: number) => T;
  const next = new Ctor(capacity);
  next.set(column as never);
  return next;
}
