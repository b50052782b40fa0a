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
  const { type, data, crc } = input as EventInput;
  validateEventType(type);
  let bytes: Uint8Array;
  if (data === undefined) bytes = new Uint8Array(0);
  else if (typeof data === 'string') bytes = utf8.encode(data);
  else if (data instanceof Uint8Array) bytes = data;
  else throw invalidEvent(index, 'data must be a Uint8Array or a string');
  if (bytes.byteLength > LIMITS.maxEventDataBytes) {
    throw new RingStoreError(
      'EVENT_TOO_LARGE',
      `event ${index}: data is ${bytes.byteLength} bytes, the limit is ${LIMITS.maxEventDataBytes}`,
      { index },
    );
  }
  if (crc !== undefined && !(Number.isInteger(crc) && crc >= -0x80000000 && crc <= 0xffffffff)) {
    throw invalidEvent(index, 'crc must be a 32-bit integer');
  }
  return crc === undefined ? { type, data: bytes } : { type, data: bytes, crc: crc >>> 0 };
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
    total += event.data.byteLength;
    return event;
  });
  if (total > LIMITS.maxBatchDataBytes) {
    throw new RingStoreError(
      'BATCH_TOO_LARGE',
      `a batch holds at most ${LIMITS.maxBatchDataBytes} bytes of data, got ${total}`,
    );
  }
  return events;
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
