import { RingStoreError } from '../../errors.js';
import { byteLengthOf } from '../../model/byte-length.js';
import { EMPTY_BYTES } from '../../model/events.js';
import { checkEventCount } from '../../model/put-validator.js';
import type { EventInput, PutOptions, PutResult } from '../../types.js';
import { isCompactJson } from './events-body.js';
import { JsonBytes, JsonText } from './events-scan.js';
import { assertSafeJsonValue } from './safe-json.js';

/**
 * The JSON shapes of the HTTP API and the one rule for how event data and metadata cross it. The
 * rule is the same for both fields, `data`/`dataBase64` and `metadata`/`metadataBase64`:
 *
 * Writing: `data` (any JSON value) is stored as its compact UTF-8 JSON text, `JSON.stringify(data)`;
 * `dataBase64` is stored as the decoded bytes; neither means empty data.
 *
 * Reading: storage keeps bytes only, so the form is derived from the bytes. An event is returned
 * as `data` exactly when its bytes are the canonical compact JSON text of a value the API would
 * accept as `data` (valid UTF-8, parses, re-serialises to the identical bytes, passes the depth and
 * prototype checks); otherwise it is returned as `dataBase64`. So a value written as `data` always
 * reads back as the same `data`, and every read is lossless: a client that turns `data` back into
 * `JSON.stringify(data)` bytes gets exactly the stored bytes. Bytes written as `dataBase64` that
 * happen to be canonical JSON (e.g. `42`, `"x"`) read back as `data`, with the same bytes. Empty
 * bytes read back as `dataBase64: ""` (and `metadataBase64: ""`).
 */

/** Response header on every /v1 answer: the store's committed generation. */
export const GENERATION_HEADER = 'ringstore-generation';
/** Response header on error answers: fastify's request id, also in the body as `error.requestId`. */
export const REQUEST_ID_HEADER = 'x-request-id';
/** Response header on append answers: the durability level the put reached. */
export const DURABILITY_HEADER = 'ringstore-durability';

export interface WireEvent {
  type: string;
  data?: unknown;
  dataBase64?: string;
  metadata?: unknown;
  metadataBase64?: string;
  crc?: number;
}

export interface WirePutResult {
  firstVersion: number;
  lastVersion: number;
  firstPosition: number;
  generation: number;
  timestamp: number;
}

export interface WireStoredEvent {
  type: string;
  version: number;
  position: number;
  generation: number;
  timestamp: number;
  crc: number;
  aggregateType?: string;
  aggregateId?: string;
  data?: unknown;
  dataBase64?: string;
  metadata?: unknown;
  metadataBase64?: string;
}

const EVENT_KEYS = new Set(['type', 'data', 'dataBase64', 'metadata', 'metadataBase64', 'crc']);
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function invalidEvent(index: number, why: string): RingStoreError {
  return new RingStoreError('INVALID_EVENT', `event ${index}: ${why}`, { index });
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Turns the `events` array of a request into EventInputs; the store's PutValidator
 * (src/model/put-validator.ts) validates names and sizes.
 *
 * Each `data` and `metadata` value is stored as the UTF-8 of its compact JSON text. A value that
 * parseEventsBody left as a JsonBytes already is those bytes (the usual case: no parse, no
 * stringify, no encode), and the event gets them as they are, a view of the body. Any other value
 * becomes its compact JSON text (a JsonText's compact(), else `JSON.stringify(value)`), and all of
 * a batch's texts are encoded to UTF-8 in one Buffer.from; every event gets views of its slices.
 * One encode call per batch instead of one per field and event. The store copies the bytes into
 * its ring, so none of the views need own their memory.
 */
export function decodeEvents(value: unknown): EventInput[] {
  if (!Array.isArray(value)) throw new RingStoreError('INVALID_BATCH', '"events" must be a non-empty array');
  // The count before any event is decoded; sizes and names are checked by the store's PutValidator.
  checkEventCount(value.length);
  const count = value.length;
  const events: EventInput[] = new Array(count);
  // JSON text of each event's data (at 2 * index) and metadata (at 2 * index + 1), or undefined
  // where the bytes are already set.
  const texts: (string | undefined)[] = new Array(2 * count);
  let joined = '';
  for (let index = 0; index < count; index++) {
    const event = decodeEvent(value[index], index);
    events[index] = event;
    const wire = value[index] as Record<string, unknown>;
    if (event.data === undefined) {
      const text = compactJson(wire.data, index, 'data');
      texts[2 * index] = text;
      joined += text;
    }
    if (event.metadata === undefined) {
      const text = compactJson(wire.metadata, index, 'metadata');
      texts[2 * index + 1] = text;
      joined += text;
    }
  }
  if (joined.length > 0) {
    const all = Buffer.from(joined, 'utf8');
    // All one-byte characters (the usual case): byte offsets equal string offsets.
    const ascii = all.byteLength === joined.length;
    let at = 0;
    for (let slot = 0; slot < texts.length; slot++) {
      const text = texts[slot];
      if (text === undefined) continue;
      const bytes = ascii ? text.length : Buffer.byteLength(text, 'utf8');
      const event = events[slot >> 1] as EventInput;
      if ((slot & 1) === 0) event.data = all.subarray(at, at + bytes);
      else event.metadata = all.subarray(at, at + bytes);
      at += bytes;
    }
  }
  return events;
}

/** The bytes of data and metadata of decoded events, as the appended-bytes metric counts them. */
export function payloadBytes(events: readonly EventInput[]): number {
  let bytes = 0;
  for (const event of events)
    bytes += byteLengthOf(event.data as Uint8Array) + byteLengthOf(event.metadata as Uint8Array);
  return bytes;
}

/** Thrown by finiteNumbers inside JSON.stringify; never leaves compactJson. */
const NOT_FINITE = new Error('a number JSON cannot hold');

/** JSON.stringify's replacer for stored values: Infinity (from `1e999`) would become `null`. */
function finiteNumbers(_key: string, value: unknown): unknown {
  if (typeof value === 'number' && !Number.isFinite(value)) throw NOT_FINITE;
  return value;
}

/**
 * The stored text of a `data` or `metadata` value. The values came from JSON.parse or a scan of
 * parseEventsBody and passed the depth check; a number too large for a double is refused, where
 * JSON.stringify would store it as `null`.
 */
function compactJson(value: unknown, index: number, field: 'data' | 'metadata'): string {
  try {
    return value instanceof JsonText
      ? value.compact(finiteNumbers)
      : (JSON.stringify(value, finiteNumbers) as string);
  } catch (err) {
    if (err !== NOT_FINITE) throw err;
    throw invalidEvent(
      index,
      `${field} holds a number too large for a double, which JSON would store as null`,
    );
  }
}

/**
 * Checks one event; its `data` (`metadata`) is left undefined when it is JSON that decodeEvents
 * encodes.
 */
function decodeEvent(value: unknown, index: number): EventInput {
  if (!isPlainObject(value)) throw invalidEvent(index, 'must be an object { type, data | dataBase64 }');
  for (const key in value) {
    if (!EVENT_KEYS.has(key)) throw invalidEvent(index, `unknown field ${JSON.stringify(key.slice(0, 40))}`);
  }
  const { type, data, dataBase64, metadata, metadataBase64, crc } = value;
  if (typeof type !== 'string')
    throw new RingStoreError('INVALID_NAME', `event ${index}: type must be a string`, { kind: 'event type' });
  if (crc !== undefined && typeof crc !== 'number') throw invalidEvent(index, 'crc must be a number');
  const event: EventInput = {
    type,
    data: decodeBytes(data, dataBase64, index, 'data'),
    metadata: decodeBytes(metadata, metadataBase64, index, 'metadata'),
  };
  if (crc !== undefined) event.crc = crc;
  return event;
}

/**
 * The bytes of `field`/`fieldBase64`: undefined when they are JSON for decodeEvents to encode, the
 * scanned bytes themselves when they are already the compact UTF-8 JSON text stored.
 */
function decodeBytes(
  json: unknown,
  base64: unknown,
  index: number,
  field: 'data' | 'metadata',
): Uint8Array | undefined {
  if (json !== undefined && base64 !== undefined) {
    throw invalidEvent(index, `give either ${field} or ${field}Base64, not both`);
  }
  if (base64 !== undefined) {
    if (typeof base64 !== 'string' || !BASE64.test(base64)) {
      throw invalidEvent(index, `${field}Base64 must be standard padded base64`);
    }
    return Buffer.from(base64, 'base64');
  }
  if (json instanceof JsonBytes) return json.bytes;
  return json === undefined ? EMPTY_BYTES : undefined;
}

const PUT_KEYS = new Set(['events', 'expectedVersion', 'idempotencyKey']);

/** The body of POST …/events: `{ events, expectedVersion?, idempotencyKey? }`. */
export function decodePutBody(body: unknown): { events: EventInput[]; options: PutOptions } {
  if (!isPlainObject(body)) throw new RingStoreError('INVALID_BATCH', 'the body must be a JSON object');
  for (const key in body) {
    if (!PUT_KEYS.has(key)) {
      throw new RingStoreError('INVALID_BATCH', `unknown field ${JSON.stringify(key.slice(0, 40))}`);
    }
  }
  return { events: decodeEvents(body.events), options: putOptions(body) };
}

export function putOptions(body: Record<string, unknown>): PutOptions {
  const options: PutOptions = {};
  // The store validates the values; here they only must not be silently dropped.
  if (body.expectedVersion !== undefined)
    options.expectedVersion = body.expectedVersion as PutOptions['expectedVersion'];
  if (body.idempotencyKey !== undefined) options.idempotencyKey = body.idempotencyKey as string;
  return options;
}

/**
 * The answer to an append, `{ firstVersion, lastVersion, firstPosition, generation, timestamp }`,
 * built as text: five integers need no general serializer on the hot path.
 */
export function putResultJson(result: PutResult): string {
  return `{"firstVersion":${result.firstVersion},"lastVersion":${result.lastVersion},"firstPosition":${result.firstPosition},"generation":${result.generation},"timestamp":${result.timestamp}}`;
}

/**
 * Whether `bytes` are the canonical compact JSON of a value the API accepts as `data` (valid UTF-8,
 * parses, re-serialises to the identical bytes, passes the depth and prototype checks): then a read
 * answers with them as `data`, else as `dataBase64`. The body scanner vouches for most such bytes
 * without parsing them; the rest are decided by parsing and serialising.
 */
export function isCanonicalJson(bytes: Uint8Array): boolean {
  if (bytes.byteLength === 0) return false;
  const first = bytes[0] as number;
  // Canonical JSON text starts with one of: { [ " - 0-9 t f n. Anything else cannot qualify.
  if (
    !(
      first === 0x7b ||
      first === 0x5b ||
      first === 0x22 ||
      first === 0x2d ||
      (first >= 0x30 && first <= 0x39) ||
      first === 0x74 ||
      first === 0x66 ||
      first === 0x6e
    )
  ) {
    return false;
  }
  if (isCompactJson(bytes)) return true;
  try {
    const text = strictUtf8.decode(bytes);
    const value: unknown = JSON.parse(text);
    if (JSON.stringify(value) !== text) return false;
    assertSafeJsonValue(value);
    return true;
  } catch {
    return false;
  }
}

/** The data bytes a read event stands for: the inverse of the read rule above. */
export function wireEventBytes(event: { data?: unknown; dataBase64?: string }): Uint8Array {
  return wireBytes(event.data, event.dataBase64);
}

/** The metadata bytes a read event stands for: the inverse of the read rule above. */
export function wireEventMetadata(event: { metadata?: unknown; metadataBase64?: string }): Uint8Array {
  return wireBytes(event.metadata, event.metadataBase64);
}

function wireBytes(json: unknown, base64: string | undefined): Uint8Array {
  if (base64 !== undefined) return new Uint8Array(Buffer.from(base64, 'base64'));
  if (json !== undefined) return new TextEncoder().encode(JSON.stringify(json));
  return new Uint8Array(0);
}

const UNSIGNED = /^(?:0|[1-9][0-9]{0,15})$/;

/** Reads one optional non-negative integer query parameter, strictly (no signs, floats, repeats). */
export function queryInteger(query: Record<string, unknown>, name: string): number | undefined {
  const raw = query[name];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !UNSIGNED.test(raw) || !Number.isSafeInteger(Number(raw))) {
    throw new RingStoreError(
      'INVALID_QUERY',
      `${name} must be one integer from 0 to ${Number.MAX_SAFE_INTEGER}`,
      {
        option: name,
      },
    );
  }
  return Number(raw);
}

export function queryTypes(query: Record<string, unknown>): string[] | undefined {
  const raw = query.types;
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || raw.length === 0) {
    throw new RingStoreError('INVALID_QUERY', 'types must be one comma-separated list of event types', {
      option: 'types',
    });
  }
  return raw.split(',');
}

/** Unknown query parameters are refused, so a misspelt filter never silently reads everything. */
export function assertKnownQuery(query: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(query)) {
    if (!allowed.includes(key)) {
      throw new RingStoreError(
        'INVALID_QUERY',
        `unknown query parameter ${JSON.stringify(key.slice(0, 40))}`,
        {
          option: key.slice(0, 40),
        },
      );
    }
  }
}
