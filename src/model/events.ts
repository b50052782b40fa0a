import { crc32 } from '../crc.js';
import { RingStoreError } from '../errors.js';
import type { EventInput, ExpectedVersion, PutOptions, ValidEvent } from '../types.js';
import { LIMITS } from './limits.js';
import { validateEventType } from './names.js';

const utf8 = new TextEncoder();

function invalidEvent(index: number, why: string): RingStoreError {
  return new RingStoreError('INVALID_EVENT', `event ${index}: ${why}`, { index });
}

export function validateEvent(input: unknown, index: number): ValidEvent {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw invalidEvent(index, 'must be an object { type, data }');
  }
  const { type, data, metadata, crc } = input as EventInput;
  validateEventType(type);
  const dataBytes = eventBytes(data, index, 'data', LIMITS.maxEventDataBytes);
  const metadataBytes = eventBytes(metadata, index, 'metadata', LIMITS.maxEventMetadataBytes);
  if (crc !== undefined && !(Number.isInteger(crc) && crc >= -0x80000000 && crc <= 0xffffffff)) {
    throw invalidEvent(index, 'crc must be a 32-bit integer');
  }
  return crc === undefined
    ? { type, data: dataBytes, metadata: metadataBytes }
    : { type, data: dataBytes, metadata: metadataBytes, crc: crc >>> 0 };
}

/** The bytes of an absent data or metadata: shared, since zero bytes cannot be written to. */
export const EMPTY_BYTES = new Uint8Array(0);

/** The one rule for `data` and `metadata`: bytes, or a string stored as UTF-8; absent is empty. */
function eventBytes(value: unknown, index: number, field: 'data' | 'metadata', limit: number): Uint8Array {
  let bytes: Uint8Array;
  if (value === undefined) return EMPTY_BYTES;
  if (typeof value === 'string') bytes = utf8.encode(value);
  else if (value instanceof Uint8Array) bytes = value;
  else throw invalidEvent(index, `${field} must be a Uint8Array or a string`);
  if (bytes.byteLength > limit) {
    throw new RingStoreError(
      'EVENT_TOO_LARGE',
      `event ${index}: ${field} is ${bytes.byteLength} bytes, the limit is ${limit}`,
      { index },
    );
  }
  return bytes;
}

/** Validates a whole batch at the boundary: count, per-event limits and total size. */
export function validateEvents(inputs: unknown): ValidEvent[] {
  if (!Array.isArray(inputs) || inputs.length === 0) {
    throw new RingStoreError('INVALID_BATCH', 'a put needs at least one event');
  }
  if (inputs.length > LIMITS.maxEventsPerBatch) {
    throw new RingStoreError(
      'BATCH_TOO_LARGE',
      `a batch holds at most ${LIMITS.maxEventsPerBatch} events, got ${inputs.length}`,
    );
  }
  let total = 0;
  const events = inputs.map((input, index) => {
    const event = validateEvent(input, index);
    total += event.data.byteLength + event.metadata.byteLength;
    return event;
  });
  if (total > LIMITS.maxBatchDataBytes) {
    throw new RingStoreError(
      'BATCH_TOO_LARGE',
      `a batch holds at most ${LIMITS.maxBatchDataBytes} bytes of data and metadata, got ${total}`,
    );
  }
  return events;
}

/**
 * The CRC of an event as every layer defines it: CRC-32/IEEE of its data followed by its metadata,
 * which is the CRC of the data alone when there is no metadata.
 */
export function eventCrc(event: { data: Uint8Array; metadata: Uint8Array }): number {
  const crc = crc32(event.data);
  return event.metadata.byteLength === 0 ? crc : crc32(event.metadata, crc);
}

export function validateExpectedVersion(value: unknown): ExpectedVersion {
  if (value === undefined) return 'any';
  if (value === 'any' || value === 'none' || value === 'exists') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  throw new RingStoreError(
    'INVALID_VERSION',
    `invalid expectedVersion ${JSON.stringify(value) ?? String(value)}: use 'any', 'none', 'exists' or an integer >= 0`,
  );
}

export function validateIdempotencyKey(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (
    typeof value !== 'string' ||
    value.length === 0 ||
    Buffer.byteLength(value) > LIMITS.maxIdempotencyKeyBytes
  ) {
    throw new RingStoreError(
      'INVALID_IDEMPOTENCY_KEY',
      `an idempotency key must be a string of 1 to ${LIMITS.maxIdempotencyKeyBytes} UTF-8 bytes`,
    );
  }
  return value;
}

export interface ValidPutOptions {
  expectedVersion: ExpectedVersion;
  idempotencyKey: string | undefined;
}

export function validatePutOptions(options: unknown): ValidPutOptions {
  if (options === undefined) return { expectedVersion: 'any', idempotencyKey: undefined };
  if (typeof options !== 'object' || options === null) {
    throw new RingStoreError('INVALID_BATCH', 'put options must be an object');
  }
  const { expectedVersion, idempotencyKey } = options as PutOptions;
  return {
    expectedVersion: validateExpectedVersion(expectedVersion),
    idempotencyKey: validateIdempotencyKey(idempotencyKey),
  };
}

/**
 * The single rule for optimistic concurrency, used by the model store and the storage writer alike.
 * Returns true when a batch may be appended to an instance that is at `actual`.
 */
export function expectedVersionMatches(expected: ExpectedVersion, actual: number): boolean {
  if (expected === 'any') return true;
  if (expected === 'none') return actual === 0;
  if (expected === 'exists') return actual > 0;
  return expected === actual;
}
