import type { StoredEvent } from '../../types.js';
import { isCanonicalJson } from './wire.js';

/** Bytes of the JSON punctuation the answers are made of. */
const QUOTE = 0x22;
const COMMA = 0x2c;
const ZERO = 0x30;
const EIGHT_DIGITS = 100_000_000;
/** Texts longer than this are handed to the native encoder. */
const SHORT_TEXT = 64;

/**
 * The JSON of read answers, written as UTF-8 bytes into one buffer: every field as JSON.stringify
 * writes it for the same object (so clients see the same text as before), and canonical `data`
 * and `metadata` (wire.ts has the rule) copied from the stored bytes as they are, never decoded,
 * parsed or serialised again.
 */
class ReadAnswer {
  #buffer: Buffer;
  #at = 0;

  constructor(expectedBytes: number) {
    this.#buffer = Buffer.allocUnsafe(Math.max(64, expectedBytes));
  }

  /** The bytes written so far (a view of the answer's buffer). */
  bytes(): Buffer {
    return this.#buffer.subarray(0, this.#at);
  }

  /**
   * Writes `"key":value` for each field of `fields` that is not undefined: each followed by a comma
   * when the fields come ahead of others, each preceded by one when they come behind others.
   */
  fields(fields: object, place: 'ahead' | 'behind'): this {
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined) continue;
      if (place === 'behind') this.#byte(COMMA);
      this.#text(`${JSON.stringify(key)}:${JSON.stringify(value)}`);
      if (place === 'ahead') this.#byte(COMMA);
    }
    return this;
  }

  /** Writes one stored event as its WireStoredEvent object. */
  event(event: StoredEvent, withAggregate: boolean): this {
    this.#text(`{"type":${JSON.stringify(event.type)},"version":`);
    this.#integer(event.version);
    this.#ascii(',"position":');
    this.#integer(event.position);
    this.#ascii(',"generation":');
    this.#integer(event.generation);
    this.#ascii(',"timestamp":');
    this.#integer(event.timestamp);
    this.#ascii(',"crc":');
    this.#integer(event.crc);
    if (withAggregate) {
      this.#text(
        `,"aggregateType":${JSON.stringify(event.aggregateType)},"aggregateId":"${event.aggregateId}"`,
      );
    }
    this.#stored('data', event.data);
    this.#stored('metadata', event.metadata);
    this.#ascii('}');
    return this;
  }

  /** Writes `[event,event,…]`. */
  events(events: readonly StoredEvent[], withAggregate: boolean): this {
    this.#ascii('[');
    for (let i = 0; i < events.length; i++) {
      if (i > 0) this.#byte(COMMA);
      this.event(events[i] as StoredEvent, withAggregate);
    }
    this.#ascii(']');
    return this;
  }

  /** Writes ASCII punctuation and names: one byte per character, so never anything else. */
  raw(text: string): this {
    this.#ascii(text);
    return this;
  }

  /** `,"data":<the stored JSON>` or `,"dataBase64":"<base64>"` (for `metadata` the same). */
  #stored(field: 'data' | 'metadata', bytes: Uint8Array): void {
    if (isCanonicalJson(bytes)) {
      this.#ascii(`,"${field}":`);
      this.#room(bytes.byteLength);
      this.#buffer.set(bytes, this.#at);
      this.#at += bytes.byteLength;
      return;
    }
    this.#ascii(`,"${field}Base64":"`);
    if (bytes.byteLength > 0) {
      this.#ascii(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'));
    }
    this.#byte(QUOTE);
  }

  /**
   * A number as JSON.stringify writes it. The fields are non-negative integers, written digit by
   * digit in two parts below 10^8 (small-integer arithmetic; String(n) of a timestamp or a CRC above
   * 2^31 costs more than the rest of the field).
   */
  #integer(n: number): void {
    if (!(Number.isSafeInteger(n) && n >= 0)) {
      this.#ascii(JSON.stringify(n));
      return;
    }
    if (n < EIGHT_DIGITS) {
      this.#digits(n, digitCount(n));
      return;
    }
    const high = Math.floor(n / EIGHT_DIGITS);
    this.#digits(high, digitCount(high));
    this.#digits(n - high * EIGHT_DIGITS, 8);
  }

  /** The last `count` decimal digits of `value` (below 10^8), zero-padded. */
  #digits(value: number, count: number): void {
    this.#room(count);
    const buffer = this.#buffer;
    const first = this.#at;
    // As an int32: a modulo of a double is a call into the C library.
    let rest = value | 0;
    for (let at = first + count - 1; at >= first; at--) {
      const tenth = (rest / 10) | 0;
      buffer[at] = ZERO + rest - 10 * tenth;
      rest = tenth;
    }
    this.#at = first + count;
  }

  #byte(byte: number): void {
    this.#room(1);
    this.#buffer[this.#at++] = byte;
  }

  /**
   * ASCII text: a short one byte by byte, cheaper than a call into the native encoder; a long one
   * (base64 of large data) by the encoder.
   */
  #ascii(text: string): void {
    const length = text.length;
    this.#room(length);
    const buffer = this.#buffer;
    const at = this.#at;
    if (length > SHORT_TEXT) {
      this.#at = at + buffer.write(text, at, 'latin1');
      return;
    }
    for (let i = 0; i < length; i++) buffer[at + i] = text.charCodeAt(i);
    this.#at = at + length;
  }

  /** Any text, as UTF-8: byte by byte while it is ASCII, the rest by the native encoder. */
  #text(text: string): void {
    const length = text.length;
    this.#room(3 * length);
    const buffer = this.#buffer;
    const at = this.#at;
    for (let i = 0; i < length; i++) {
      const c = text.charCodeAt(i);
      if (c >= 0x80) {
        this.#at = at + i + buffer.write(text.slice(i), at + i, 'utf8');
        return;
      }
      buffer[at + i] = c;
    }
    this.#at = at + length;
  }

  /** Makes room for `bytes` more bytes. */
  #room(bytes: number): void {
    if (this.#at + bytes <= this.#buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(2 * this.#buffer.length, this.#at + bytes));
    this.#buffer.copy(grown, 0, 0, this.#at);
    this.#buffer = grown;
  }
}

/** Decimal digits of `value` (below 10^8). */
function digitCount(value: number): number {
  if (value < 10_000) return value < 10 ? 1 : value < 100 ? 2 : value < 1_000 ? 3 : 4;
  return value < 100_000 ? 5 : value < 1_000_000 ? 6 : value < 10_000_000 ? 7 : 8;
}

/**
 * Bytes a read answer of these events takes at most in the usual case (fields of ordinary size,
 * data and metadata as JSON or as base64, 4/3 of their size), so that it rarely grows.
 */
function expectedBytes(events: readonly StoredEvent[]): number {
  let bytes = 64;
  for (const event of events) {
    bytes += 160 + Math.ceil(((event.data.byteLength + event.metadata.byteLength) * 4) / 3) + 8;
  }
  return bytes;
}

/**
 * A read's answer, `{ ...before, events: [...], ...after }`, as the UTF-8 of the text
 * JSON.stringify writes for that object (fields that are undefined are left out; no name is in
 * both).
 */
export function eventsAnswer(
  before: object,
  events: readonly StoredEvent[],
  withAggregate: boolean,
  after: object,
): Buffer {
  return new ReadAnswer(expectedBytes(events))
    .raw('{')
    .fields(before, 'ahead')
    .raw('"events":')
    .events(events, withAggregate)
    .fields(after, 'behind')
    .raw('}')
    .bytes();
}

/** One stored event as the JSON text of a WireStoredEvent (an SSE message's data). */
export function storedEventJson(event: StoredEvent, withAggregate: boolean): string {
  return new ReadAnswer(expectedBytes([event])).event(event, withAggregate).bytes().toString('utf8');
}
