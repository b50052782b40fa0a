import { RingStoreError } from '../errors.js';
import { crc32 } from '../model/crc.js';
import type { StoredEvent } from '../types.js';
import type { FileIO } from './file-io.js';
import { joinPath, segmentFileName } from './format.js';
import { EVENT_HEADER_BYTES, type IndexRecord } from './index-record.js';
import type { NameRegistry } from './name-registry.js';

/** Two wanted spans of one segment file are read with one call when at most this many bytes lie between them. */
const MERGE_GAP_BYTES = 4096;
/** The largest single read: bounds the scratch buffer and the time of each synchronous read call. */
export const MAX_READ_BYTES = 1 << 20;

/**
 * Consecutive wanted events of one batch: the batch's fields, a copy of the event headers of the
 * wanted events, and where their stored bytes lie in the batch's segment.
 */
export interface Span {
  aggregateTypeCode: number;
  aggregateId: bigint;
  segment: number;
  /** Segment offset of the first wanted event's bytes, and the bytes of all wanted events. */
  dataStart: number;
  dataBytes: number;
  /** Position and version of the first wanted event. */
  position: number;
  version: number;
  generation: number;
  timestamp: number;
  /** 12-byte event headers of the wanted events (docs/FORMAT.md, "Index record"). */
  headers: DataView;
  count: number;
}

/**
 * Spans of the events `first … first + count − 1` (0-based in the batch) of a decoded record whose
 * event headers are in `view`, at most MAX_READ_BYTES each (a bigger one is split). Spans point
 * into `view`: the bytes under it must never change (cached records, the in-memory tail, scan
 * windows are all written once).
 */
export function spansOf(
  record: IndexRecord,
  view: DataView,
  first: number,
  count: number,
  out: Span[],
): void {
  let offset = record.dataOffset;
  let header = record.headersOffset;
  for (let i = 0; i < first; i++) {
    offset += view.getUint16(header, true) + view.getUint16(header + 2, true);
    header += EVENT_HEADER_BYTES;
  }
  let spanFirst = first;
  let spanStart = offset;
  let spanHeader = header;
  let bytes = 0;
  const end = first + count;
  const push = (to: number) => {
    const length = (to - spanFirst) * EVENT_HEADER_BYTES;
    const headers = new DataView(view.buffer, view.byteOffset + spanHeader, length);
    out.push({
      aggregateTypeCode: record.aggregateTypeCode,
      aggregateId: record.aggregateId,
      segment: record.dataSegment,
      dataStart: spanStart,
      dataBytes: bytes,
      position: record.firstPosition + spanFirst,
      version: record.firstVersion + spanFirst,
      generation: record.generation,
      timestamp: record.timestamp,
      headers,
      count: to - spanFirst,
    });
  };
  for (let i = first; i < end; i++) {
    const length = view.getUint16(header, true) + view.getUint16(header + 2, true);
    if (bytes > 0 && bytes + length > MAX_READ_BYTES) {
      push(i);
      spanFirst = i;
      spanStart = offset;
      spanHeader = header;
      bytes = 0;
    }
    bytes += length;
    offset += length;
    header += EVENT_HEADER_BYTES;
  }
  if (end > spanFirst) push(end);
}

/**
 * Reads the stored bytes of spans from a domain's data segments and builds their StoredEvents. All
 * their data goes into one buffer per call (each event's data is a view of it, so a caller may
 * mutate what it got without touching the store or other results). Consecutive spans in one
 * segment file, in increasing order and close together, are read with one positional read of at
 * most MAX_READ_BYTES; a run with gaps is read into a scratch buffer and the wanted bytes copied out.
 */
export class EventMaterializer {
  readonly #io: FileIO;
  readonly #folder: string;
  readonly #domain: string;
  /** Segment descriptors by aggregate-type code, then segment (opened on first read). */
  readonly #fds: (number | undefined)[][] = [];
  #scratch = new Uint8Array(0);

  constructor(io: FileIO, folder: string, domain: string) {
    this.#io = io;
    this.#folder = folder;
    this.#domain = domain;
  }

  materialize(spans: readonly Span[], registry: NameRegistry, verifyCrc: boolean): StoredEvent[] {
    let count = 0;
    let total = 0;
    for (const span of spans) {
      count += span.count;
      total += span.dataBytes;
    }
    const events: StoredEvent[] = new Array(count);
    if (count === 0) return events;
    // Not zero-filled: every byte is overwritten by a read (a short read throws) before it is seen.
    const outBuffer = Buffer.allocUnsafeSlow(total).buffer;
    const out = new Uint8Array(outBuffer, 0, total);
    const eventTypes = registry.eventTypes;
    let outAt = 0;
    let k = 0;
    let s = 0;
    while (s < spans.length) {
      const head = spans[s]!;
      const runStart = head.dataStart;
      let runEnd = runStart + head.dataBytes;
      let dense = true;
      let t = s + 1;
      for (; t < spans.length; t++) {
        const next = spans[t]!;
        if (next.aggregateTypeCode !== head.aggregateTypeCode || next.segment !== head.segment) break;
        const end = next.dataStart + next.dataBytes;
        if (
          next.dataStart < runEnd ||
          next.dataStart - runEnd > MERGE_GAP_BYTES ||
          end - runStart > MAX_READ_BYTES
        )
          break;
        if (next.dataStart !== runEnd) dense = false;
        runEnd = end;
      }
      const runLength = runEnd - runStart;
      if (dense) {
        this.#read(registry, head, out, outAt, runLength, runStart);
      } else {
        const scratch = this.#scratchOf(runLength);
        this.#read(registry, head, scratch, 0, runLength, runStart);
        let at = outAt;
        for (let u = s; u < t; u++) {
          const span = spans[u]!;
          const from = span.dataStart - runStart;
          out.set(scratch.subarray(from, from + span.dataBytes), at);
          at += span.dataBytes;
        }
      }
      for (let u = s; u < t; u++) {
        const span = spans[u]!;
        const aggregateType = registry.aggregateTypes[span.aggregateTypeCode]!;
        const headers = span.headers;
        let segmentOffset = span.dataStart;
        for (let i = 0; i < span.count; i++) {
          const h = i * EVENT_HEADER_BYTES;
          const dataLength = headers.getUint16(h, true);
          const metadataLength = headers.getUint16(h + 2, true);
          const length = dataLength + metadataLength;
          const crc = headers.getUint32(h + 8, true);
          if (verifyCrc && crc32(new Uint8Array(outBuffer, outAt, length)) !== crc) {
            throw this.#damage(registry, span, segmentOffset, 'event crc', 'fails its CRC');
          }
          events[k++] = {
            domain: this.#domain,
            aggregateType,
            aggregateId: span.aggregateId,
            version: span.version + i,
            position: span.position + i,
            generation: span.generation,
            timestamp: span.timestamp,
            type: eventTypes[headers.getUint16(h + 4, true)]!,
            data: new Uint8Array(outBuffer, outAt, dataLength),
            metadata: new Uint8Array(outBuffer, outAt + dataLength, metadataLength),
            crc,
          };
          outAt += length;
          segmentOffset += length;
        }
      }
      s = t;
    }
    return events;
  }

  close(): void {
    for (const bySegment of this.#fds)
      for (const fd of bySegment ?? []) if (fd !== undefined) this.#io.close(fd);
    this.#fds.length = 0;
  }

  /** Reads `length` bytes at `position` of the span's segment into buffer[offset…]; CORRUPT_DATA when short. */
  #read(
    registry: NameRegistry,
    span: Span,
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): void {
    if (length === 0) return;
    let got = -1;
    try {
      let bySegment = this.#fds[span.aggregateTypeCode];
      if (!bySegment) {
        bySegment = [];
        this.#fds[span.aggregateTypeCode] = bySegment;
      }
      let fd = bySegment[span.segment];
      if (fd === undefined) {
        fd = this.#io.open(joinPath(this.#folder, this.#fileName(registry, span)), 'read');
        bySegment[span.segment] = fd;
      }
      got = this.#io.read(fd, buffer, offset, length, position);
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'ENOENT') throw err;
    }
    if (got !== length) {
      throw this.#damage(registry, span, position + Math.max(0, got), 'data missing', 'is missing');
    }
  }

  #damage(registry: NameRegistry, span: Span, offset: number, reason: string, what: string): RingStoreError {
    const file = `${this.#domain}/${this.#fileName(registry, span)}`;
    return new RingStoreError('CORRUPT_DATA', `${file}: event data at offset ${offset} ${what}`, {
      file,
      offset,
      reason,
    });
  }

  #fileName(registry: NameRegistry, span: Span): string {
    return segmentFileName(registry.aggregateTypes[span.aggregateTypeCode]!, span.segment);
  }

  /** A reusable buffer of at least `length` bytes for runs read with gaps (at most MAX_READ_BYTES). */
  #scratchOf(length: number): Uint8Array {
    if (this.#scratch.byteLength < length) {
      this.#scratch = new Uint8Array(
        Math.min(MAX_READ_BYTES, Math.max(length, this.#scratch.byteLength * 2, 4096)),
      );
    }
    return this.#scratch;
  }
}
