import { crcMismatch } from '../errors.js';
import { byteLengthOf } from '../model/byte-length.js';
import { crc32, crc32Range } from '../model/crc.js';
import { EMPTY_BYTES } from '../model/events.js';
import type { NameCache } from '../model/name-cache.js';
import type { CheckedEvent } from '../model/put-validator.js';
import type { AppendBatch, EventList } from '../storage/types.js';
import type { ExpectedVersion } from '../types.js';
import { alignRecord, RECORD_HEADER_BYTES } from './ring-layout.js';

/**
 * The encoding of one batch (the events of one put) in the body of a ring record. Little endian.
 *
 *   body (starts at record + RECORD_HEADER_BYTES)
 *   0   u32 eventCount            4  u16 typeCount         6  u8 domainLength   7 u8 aggregateTypeLength
 *   8   u8  idempotencyKeyLength  9  u8 expectedKind       10 u16 flags         12 u32 payloadBytes
 *   16  u64 aggregateId           24 f64 expectedVersion (when expectedKind is EXACT)
 *   32  domain · aggregate type · idempotency key (UTF-8) · typeCount × (u8 length, type name)
 *   …   zero fill to 8-byte alignment
 *   …   eventCount × 12-byte event headers:
 *         0 u16 dataLength | 2 u16 typeIndex (bit 15: CRC supplied) | 4 u32 crc
 *         8 u16 metadataLength | 10 u16 zero
 *   …   event payloads, back to back: each event's data, then its metadata
 *
 * payloadBytes counts the data and metadata bytes of all events. An event header starts with the
 * on-disk shape (length u16 | type u16 | crc32 u32) except that the type is an index into the
 * batch's own type list; the writer maps names to the domain's registry codes. The CRC covers the
 * event's data followed by its metadata; both lie next to each other in the ring, so the CRC stage
 * computes it over one span. Producers write the CRC they were given (bit 15 set) or 0; the CRC
 * stage overwrites it with the computed one, after comparing. With crc 'inline' the producer
 * writes computed CRCs and sets FLAG_CRC_COMPUTED.
 */
export const BODY = Object.freeze({
  eventCount: 0,
  typeCount: 4,
  domainLength: 6,
  aggregateTypeLength: 7,
  keyLength: 8,
  expectedKind: 9,
  flags: 10,
  payloadBytes: 12,
  aggregateId: 16,
  expectedVersion: 24,
  names: 32,
});

export const EVENT_HEADER_BYTES = 12;
/** Offsets inside an event header. */
export const EVENT_HEADER = Object.freeze({
  dataLength: 0,
  typeIndex: 2,
  crc: 4,
  metadataLength: 8,
  reserved: 10,
});
export const CRC_SUPPLIED_BIT = 0x8000;
export const FLAG_CRC_COMPUTED = 1;

const EXPECTED_ANY = 0;
const EXPECTED_NONE = 1;
const EXPECTED_EXISTS = 2;
const EXPECTED_EXACT = 3;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/**
 * Producer side: measures and writes batches. One encoder per producer; its scratch arrays are
 * reused from put to put, so encoding allocates nothing per event.
 */
export class BatchEncoder {
  readonly #types: string[] = [];
  #typeIndexes = new Uint16Array(64);
  #crcs = new Uint32Array(64);
  #keyBytes: Uint8Array | undefined;
  #namesBytes = 0;
  #payloadBytes = 0;

  /**
   * Plans the record for `batch` (validated) and returns its size in bytes (8-aligned, header
   * included). When `computeCrcs` is true (crc 'inline'), computes every event's CRC now and throws
   * CRC_MISMATCH if a supplied one differs, so a bad batch never takes ring space.
   */
  measure(batch: EncodableBatch, computeCrcs: boolean): number {
    const { events } = batch;
    const count = events.length;
    if (this.#typeIndexes.length < count) {
      this.#typeIndexes = new Uint16Array(count);
      this.#crcs = new Uint32Array(count);
    }
    const types = this.#types;
    types.length = 0;
    let namesBytes = batch.domain.length + batch.aggregateType.length;
    let payloadBytes = 0;
    for (let i = 0; i < count; i++) {
      const event = events[i]!;
      let index = types.indexOf(event.type);
      if (index < 0) {
        index = types.push(event.type) - 1;
        namesBytes += 1 + event.type.length;
      }
      this.#typeIndexes[i] = index;
      const data = event.data ?? EMPTY_BYTES;
      const metadata = event.metadata ?? EMPTY_BYTES;
      const metadataLength = byteLengthOf(metadata);
      payloadBytes += byteLengthOf(data) + metadataLength;
      if (computeCrcs) {
        const dataCrc = crc32(data);
        const crc = metadataLength === 0 ? dataCrc : crc32(metadata, dataCrc);
        if (event.crc !== undefined && event.crc !== crc) {
          throw crcMismatch(i);
        }
        this.#crcs[i] = crc;
      } else {
        this.#crcs[i] = event.crc ?? 0;
      }
    }
    this.#keyBytes = batch.idempotencyKey === undefined ? undefined : utf8.encode(batch.idempotencyKey);
    namesBytes += this.#keyBytes?.byteLength ?? 0;
    this.#namesBytes = namesBytes;
    this.#payloadBytes = payloadBytes;
    return alignRecord(
      RECORD_HEADER_BYTES + alignRecord(BODY.names + namesBytes) + count * EVENT_HEADER_BYTES + payloadBytes,
    );
  }

  /** Writes the batch last measured into the record at `record` (plain writes; not yet published). */
  write(
    bytes: Uint8Array,
    view: DataView,
    record: number,
    batch: EncodableBatch,
    crcsComputed: boolean,
  ): void {
    const body = record + RECORD_HEADER_BYTES;
    const { events } = batch;
    const count = events.length;
    const types = this.#types;
    const key = this.#keyBytes;
    view.setUint32(body + BODY.eventCount, count, true);
    view.setUint16(body + BODY.typeCount, types.length, true);
    view.setUint8(body + BODY.domainLength, batch.domain.length);
    view.setUint8(body + BODY.aggregateTypeLength, batch.aggregateType.length);
    view.setUint8(body + BODY.keyLength, key?.byteLength ?? 0);
    view.setUint16(body + BODY.flags, crcsComputed ? FLAG_CRC_COMPUTED : 0, true);
    view.setUint32(body + BODY.payloadBytes, this.#payloadBytes, true);
    view.setBigUint64(body + BODY.aggregateId, batch.aggregateId, true);
    const expected = batch.expectedVersion;
    if (typeof expected === 'number') {
      view.setUint8(body + BODY.expectedKind, EXPECTED_EXACT);
      view.setFloat64(body + BODY.expectedVersion, expected, true);
    } else {
      view.setUint8(
        body + BODY.expectedKind,
        expected === 'none' ? EXPECTED_NONE : expected === 'exists' ? EXPECTED_EXISTS : EXPECTED_ANY,
      );
      view.setFloat64(body + BODY.expectedVersion, 0, true);
    }
    let at = writeAscii(bytes, body + BODY.names, batch.domain);
    at = writeAscii(bytes, at, batch.aggregateType);
    if (key) {
      bytes.set(key, at);
      at += key.byteLength;
    }
    for (const type of types) {
      bytes[at++] = type.length;
      at = writeAscii(bytes, at, type);
    }
    const tableStart = body + alignRecord(BODY.names + this.#namesBytes);
    bytes.fill(0, at, tableStart);
    let table = tableStart;
    let payload = tableStart + count * EVENT_HEADER_BYTES;
    for (let i = 0; i < count; i++) {
      const event = events[i]!;
      const data = event.data ?? EMPTY_BYTES;
      const metadata = event.metadata ?? EMPTY_BYTES;
      const length = byteLengthOf(data);
      const metadataLength = byteLengthOf(metadata);
      const supplied = !crcsComputed && event.crc !== undefined ? CRC_SUPPLIED_BIT : 0;
      view.setUint16(table + EVENT_HEADER.dataLength, length, true);
      view.setUint16(table + EVENT_HEADER.typeIndex, this.#typeIndexes[i]! | supplied, true);
      view.setUint32(table + EVENT_HEADER.crc, this.#crcs[i]!, true);
      view.setUint16(table + EVENT_HEADER.metadataLength, metadataLength, true);
      view.setUint16(table + EVENT_HEADER.reserved, 0, true);
      table += EVENT_HEADER_BYTES;
      // An empty array is not copied: a detached one (byteLength 0) would throw here, after the
      // record was claimed.
      if (length > 0) bytes.set(data, payload);
      payload += length;
      if (metadataLength > 0) {
        bytes.set(metadata, payload);
        payload += metadataLength;
      }
    }
  }
}

/** What the encoder takes: a batch already validated at the boundary (PutValidator). */
export interface EncodableBatch {
  domain: string;
  aggregateType: string;
  aggregateId: bigint;
  expectedVersion: ExpectedVersion;
  idempotencyKey: string | undefined;
  events: readonly CheckedEvent[];
}

/** Names are validated ASCII (see src/model/names.ts), so one byte per character. */
function writeAscii(bytes: Uint8Array, at: number, text: string): number {
  for (let i = 0; i < text.length; i++) bytes[at++] = text.charCodeAt(i);
  return at;
}

/** Absolute byte index of a record's event-header table; the event payloads follow the table. */
export function eventTableAt(view: DataView, record: number): number {
  const body = record + RECORD_HEADER_BYTES;
  return body + alignRecord(BODY.names + namesBytes(view, body));
}

function namesBytes(view: DataView, body: number): number {
  let total =
    view.getUint8(body + BODY.domainLength) +
    view.getUint8(body + BODY.aggregateTypeLength) +
    view.getUint8(body + BODY.keyLength);
  let at = body + BODY.names + total;
  const typeCount = view.getUint16(body + BODY.typeCount, true);
  for (let t = 0; t < typeCount; t++) {
    const length = view.getUint8(at);
    total += 1 + length;
    at += 1 + length;
  }
  return total;
}

/**
 * CRC stage: computes the CRC-32 of every event of the record at `record` (over its data and
 * metadata, one contiguous span), writes it into the event header and returns -1, or returns the
 * index of the first event whose supplied CRC differs.
 */
export function checkRecordCrcs(bytes: Uint8Array, view: DataView, record: number): number {
  const body = record + RECORD_HEADER_BYTES;
  const count = view.getUint32(body + BODY.eventCount, true);
  let table = eventTableAt(view, record);
  let at = table + count * EVENT_HEADER_BYTES;
  let mismatch = -1;
  for (let i = 0; i < count; i++) {
    const length =
      view.getUint16(table + EVENT_HEADER.dataLength, true) +
      view.getUint16(table + EVENT_HEADER.metadataLength, true);
    const crc = crc32Range(bytes, at, at + length);
    if (
      (view.getUint16(table + EVENT_HEADER.typeIndex, true) & CRC_SUPPLIED_BIT) !== 0 &&
      view.getUint32(table + EVENT_HEADER.crc, true) !== crc
    ) {
      if (mismatch < 0) mismatch = i;
    }
    view.setUint32(table + EVENT_HEADER.crc, crc, true);
    table += EVENT_HEADER_BYTES;
    at += length;
  }
  return mismatch;
}

/**
 * Writer side: a decoded view of a record as the storage layer's AppendBatch. Its events are a
 * RingEventList over the record's event table: no object per event, and the payloads stay in the
 * ring until the storage layer copies them all at once (EventList.copyPayloads).
 */
export function decodeAppendBatch(
  bytes: Uint8Array,
  view: DataView,
  record: number,
  names: NameCache,
): AppendBatch {
  const body = record + RECORD_HEADER_BYTES;
  const count = view.getUint32(body + BODY.eventCount, true);
  const typeCount = view.getUint16(body + BODY.typeCount, true);
  const domainLength = view.getUint8(body + BODY.domainLength);
  const aggregateTypeLength = view.getUint8(body + BODY.aggregateTypeLength);
  const keyLength = view.getUint8(body + BODY.keyLength);
  let at = body + BODY.names;
  const domain = names.decode(bytes, at, domainLength);
  at += domainLength;
  const aggregateType = names.decode(bytes, at, aggregateTypeLength);
  at += aggregateTypeLength;
  const idempotencyKey = keyLength === 0 ? undefined : utf8Decoder.decode(bytes.slice(at, at + keyLength));
  at += keyLength;
  const types: string[] = new Array(typeCount);
  for (let t = 0; t < typeCount; t++) {
    const length = bytes[at]!;
    types[t] = names.decode(bytes, at + 1, length);
    at += 1 + length;
  }
  const eventTable = body + alignRecord(at - body);
  const payloads = eventTable + count * EVENT_HEADER_BYTES;
  return {
    domain,
    aggregateType,
    aggregateId: view.getBigUint64(body + BODY.aggregateId, true),
    expectedVersion: decodeExpected(view, body),
    idempotencyKey,
    events: new RingEventList(
      bytes,
      view,
      eventTable,
      count,
      types,
      payloads,
      view.getUint32(body + BODY.payloadBytes, true),
    ),
  };
}

/**
 * The events of a record in the ring, read from its event table by index. Valid while the record
 * is: the writer hands it to the storage layer, which copies what it keeps within the same call.
 * The payloads lie in the ring as the storage layer lays them out in a data segment (each event's
 * data, then its metadata, in event order), so copyPayloads is one copy for the whole batch.
 */
export class RingEventList implements EventList {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #table: number;
  readonly #types: readonly string[];
  readonly #payloads: number;
  readonly #payloadBytes: number;
  readonly length: number;

  constructor(
    bytes: Uint8Array,
    view: DataView,
    table: number,
    count: number,
    types: readonly string[],
    payloads: number,
    payloadBytes: number,
  ) {
    this.#bytes = bytes;
    this.#view = view;
    this.#table = table;
    this.length = count;
    this.#types = types;
    this.#payloads = payloads;
    this.#payloadBytes = payloadBytes;
  }

  type(index: number): string {
    const typeIndex = this.#view.getUint16(this.#header(index) + EVENT_HEADER.typeIndex, true);
    return this.#types[typeIndex & ~CRC_SUPPLIED_BIT]!;
  }

  dataBytes(index: number): number {
    return this.#view.getUint16(this.#header(index) + EVENT_HEADER.dataLength, true);
  }

  metadataBytes(index: number): number {
    return this.#view.getUint16(this.#header(index) + EVENT_HEADER.metadataLength, true);
  }

  crc(index: number): number {
    return this.#view.getUint32(this.#header(index) + EVENT_HEADER.crc, true);
  }

  copyPayloads(target: Uint8Array, at: number): number {
    const start = this.#payloads;
    target.set(this.#bytes.subarray(start, start + this.#payloadBytes), at);
    return this.#payloadBytes;
  }

  #header(index: number): number {
    return this.#table + index * EVENT_HEADER_BYTES;
  }
}

function decodeExpected(view: DataView, body: number): ExpectedVersion {
  switch (view.getUint8(body + BODY.expectedKind)) {
    case EXPECTED_NONE:
      return 'none';
    case EXPECTED_EXISTS:
      return 'exists';
    case EXPECTED_EXACT:
      return view.getFloat64(body + BODY.expectedVersion, true);
    default:
      return 'any';
  }
}

/** The expected version stored in a record, for error messages on the producer side. */
export function recordExpectedVersion(view: DataView, record: number): ExpectedVersion {
  return decodeExpected(view, record + RECORD_HEADER_BYTES);
}
