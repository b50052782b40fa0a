import { RingStoreError } from '../errors.js';
import type { EventInput, ExpectedVersion, PutOptions, ValidEvent } from '../types.js';
import { byteLengthOf, isByteArray } from './byte-length.js';
import type { AggregateIdInput } from './event-store.js';
import { EMPTY_BYTES, validateExpectedVersion } from './events.js';
import { parseAggregateId } from './ids.js';
import { rejectUnknownOptions } from './known-options.js';
import { LIMITS } from './limits.js';
import { validateAggregateType, validateDomain, validateEventType } from './names.js';

/**
 * The one validator of a put at the boundary, used by every store (RingStore's producers, the
 * storage engine, the in-memory model) and by the HTTP routes. Each limit of a put is checked by one
 * function below, and nowhere else: the storage layer's admission guard calls the same functions.
 *
 * A PutValidator remembers the names that passed their pattern (per kind, up to
 * MAX_REMEMBERED_NAMES), so the regular expressions run once per name rather than once per put and
 * event; everything else is checked on every put.
 */
export interface ValidPut {
  domain: string;
  aggregateType: string;
  aggregateId: bigint;
  events: ValidEvent[];
  expectedVersion: ExpectedVersion;
  idempotencyKey: string | undefined;
}

/**
 * An event checked in place: every limit holds, `data` and `metadata` are bytes or absent (empty),
 * and `crc` is absent or unsigned. Its byte arrays may be the caller's own (see
 * PutValidator.putInPlace).
 */
export interface CheckedEvent {
  readonly type: string;
  readonly data?: Uint8Array;
  readonly metadata?: Uint8Array;
  readonly crc?: number;
}

/** A put checked in place, for a caller that encodes it at once (the ring's producer). */
export interface CheckedPut extends Omit<ValidPut, 'events'> {
  events: readonly CheckedEvent[];
}

export interface ValidPutOptions {
  expectedVersion: ExpectedVersion;
  idempotencyKey: string | undefined;
}

/** Names remembered per kind at most; past it, new names are checked every time (still correct). */
const MAX_REMEMBERED_NAMES = 1024;

const utf8 = new TextEncoder();

export class PutValidator {
  /** Domains and aggregate types share one pattern (STORAGE_NAME_PATTERN), so one set serves both. */
  readonly #storageNames = new Set<string>();
  readonly #eventTypes = new Set<string>();

  put(
    domain: unknown,
    aggregateType: unknown,
    id: AggregateIdInput,
    events: unknown,
    options: unknown,
  ): ValidPut {
    return this.#put(domain, aggregateType, id, options, () => this.events(events));
  }

  /**
   * The same checks as put(), without copying the bytes of events that are already in their checked
   * form (bytes or absent data and metadata, an unsigned or absent crc): their byte arrays are the
   * caller's. For a caller that encodes the put before it returns and holds no reference after
   * (RingStore's producer); one that keeps the events must use put(), which always copies.
   */
  putInPlace(
    domain: unknown,
    aggregateType: unknown,
    id: AggregateIdInput,
    events: unknown,
    options: unknown,
  ): CheckedPut {
    return this.#put(domain, aggregateType, id, options, () => this.#eventsInPlace(events));
  }

  /** The checks of a put in their order: domain, aggregate type, id, events, options. */
  #put<E>(
    domain: unknown,
    aggregateType: unknown,
    id: AggregateIdInput,
    options: unknown,
    checkEvents: () => E,
  ): Omit<ValidPut, 'events'> & { events: E } {
    const validDomain = this.domain(domain);
    const validType = this.aggregateType(aggregateType);
    const aggregateId = parseAggregateId(id);
    const events = checkEvents();
    const { expectedVersion, idempotencyKey } = validatePutOptions(options);
    return {
      domain: validDomain,
      aggregateType: validType,
      aggregateId,
      events,
      expectedVersion,
      idempotencyKey,
    };
  }

  domain(name: unknown): string {
    if (typeof name === 'string' && this.#storageNames.has(name)) return name;
    const valid = validateDomain(name);
    remember(this.#storageNames, valid);
    return valid;
  }

  aggregateType(name: unknown): string {
    if (typeof name === 'string' && this.#storageNames.has(name)) return name;
    const valid = validateAggregateType(name);
    remember(this.#storageNames, valid);
    return valid;
  }

  eventType(name: unknown): string {
    if (typeof name === 'string' && this.#eventTypes.has(name)) return name;
    const valid = validateEventType(name);
    remember(this.#eventTypes, valid);
    return valid;
  }

  /** A whole batch: count, each event and its limits, then the total size. Returns new objects. */
  events(inputs: unknown): ValidEvent[] {
    if (!Array.isArray(inputs)) throw new RingStoreError('INVALID_BATCH', 'a put needs at least one event');
    checkEventCount(inputs.length);
    const count = inputs.length;
    const events: ValidEvent[] = new Array(count);
    let total = 0;
    for (let index = 0; index < count; index++) {
      const event = this.#event(inputs[index], index);
      events[index] = event;
      total += byteLengthOf(event.data) + byteLengthOf(event.metadata);
    }
    checkBatchBytes(total);
    return events;
  }

  /**
   * Every event (and the array) is read once: the values checked are the values returned, so a
   * getter or a proxy cannot hand the encoder other bytes than the ones whose limits held. Events in
   * the checked form keep the caller's byte arrays (not copied); the objects and the array are new.
   */
  #eventsInPlace(inputs: unknown): readonly CheckedEvent[] {
    if (!Array.isArray(inputs)) throw new RingStoreError('INVALID_BATCH', 'a put needs at least one event');
    checkEventCount(inputs.length);
    const count = inputs.length;
    const events: CheckedEvent[] = new Array(count);
    let total = 0;
    // Events of a batch mostly repeat their type: the one checked last is not looked up again.
    let lastType: string | undefined;
    for (let index = 0; index < count; index++) {
      const input: unknown = inputs[index];
      if (typeof input !== 'object' || input === null || Array.isArray(input)) {
        throw invalidEvent(index, 'must be an object { type, data }');
      }
      const { type, data, metadata, crc } = input as EventInput;
      const checked = checkedForm(type, data, metadata, crc);
      if (checked) {
        if (checked.type !== lastType) lastType = this.eventType(checked.type);
        const dataBytes = checked.data === undefined ? 0 : byteLengthOf(checked.data);
        const metadataBytes = checked.metadata === undefined ? 0 : byteLengthOf(checked.metadata);
        checkEventBytes(dataBytes, index, 'data');
        checkEventBytes(metadataBytes, index, 'metadata');
        total += dataBytes + metadataBytes;
        events[index] = checked;
      } else {
        const valid = this.#validEvent(type, data, metadata, crc, index);
        total += byteLengthOf(valid.data) + byteLengthOf(valid.metadata);
        events[index] = valid;
      }
    }
    checkBatchBytes(total);
    return events;
  }

  #event(input: unknown, index: number): ValidEvent {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      throw invalidEvent(index, 'must be an object { type, data }');
    }
    const { type, data, metadata, crc } = input as EventInput;
    return this.#validEvent(type, data, metadata, crc, index);
  }

  /** One event from its fields, each read once by the caller. */
  #validEvent(type: unknown, data: unknown, metadata: unknown, crc: unknown, index: number): ValidEvent {
    const validType = this.eventType(type);
    const dataBytes = eventBytes(data, index, 'data');
    const metadataBytes = eventBytes(metadata, index, 'metadata');
    if (crc === undefined) return { type: validType, data: dataBytes, metadata: metadataBytes };
    if (!(typeof crc === 'number' && Number.isInteger(crc) && crc >= -0x80000000 && crc <= 0xffffffff)) {
      throw invalidEvent(index, 'crc must be a 32-bit integer');
    }
    return { type: validType, data: dataBytes, metadata: metadataBytes, crc: crc >>> 0 };
  }
}

const PUT_OPTIONS: ReadonlySet<string> = new Set(['expectedVersion', 'idempotencyKey']);

export function validatePutOptions(options: unknown): ValidPutOptions {
  if (options === undefined) return { expectedVersion: 'any', idempotencyKey: undefined };
  rejectUnknownOptions(options, PUT_OPTIONS, 'INVALID_BATCH', 'put option');
  const { expectedVersion, idempotencyKey } = options as PutOptions;
  return {
    expectedVersion: validateExpectedVersion(expectedVersion),
    idempotencyKey: idempotencyKey === undefined ? undefined : checkIdempotencyKey(idempotencyKey),
  };
}

// ── the limits of a put, one check each ───────────────────────────────────────────────────────

/** A batch holds 1 to LIMITS.maxEventsPerBatch events. */
export function checkEventCount(count: number): void {
  if (count === 0) throw new RingStoreError('INVALID_BATCH', 'a put needs at least one event');
  if (count > LIMITS.maxEventsPerBatch) {
    throw new RingStoreError(
      'BATCH_TOO_LARGE',
      `a batch holds at most ${LIMITS.maxEventsPerBatch} events, got ${count}`,
    );
  }
}

/** An event's data or metadata is at most LIMITS.maxEventDataBytes / maxEventMetadataBytes. */
export function checkEventBytes(byteLength: number, index: number, field: 'data' | 'metadata'): void {
  const limit = field === 'data' ? LIMITS.maxEventDataBytes : LIMITS.maxEventMetadataBytes;
  if (byteLength > limit) {
    throw new RingStoreError(
      'EVENT_TOO_LARGE',
      `event ${index}: ${field} is ${byteLength} bytes, the limit is ${limit}`,
      { index },
    );
  }
}

/** A batch's data and metadata together are at most LIMITS.maxBatchDataBytes. */
export function checkBatchBytes(total: number): void {
  if (total > LIMITS.maxBatchDataBytes) {
    throw new RingStoreError(
      'BATCH_TOO_LARGE',
      `a batch holds at most ${LIMITS.maxBatchDataBytes} bytes of data and metadata, got ${total}`,
    );
  }
}

/** An idempotency key is a string of 1 to LIMITS.maxIdempotencyKeyBytes UTF-8 bytes. */
export function checkIdempotencyKey(value: unknown): string {
  if (
    typeof value !== 'string' ||
    value.length === 0 ||
    Buffer.byteLength(value) > LIMITS.maxIdempotencyKeyBytes ||
    !isWellFormed(value)
  ) {
    throw new RingStoreError(
      'INVALID_IDEMPOTENCY_KEY',
      `an idempotency key must be a well-formed string of 1 to ${LIMITS.maxIdempotencyKeyBytes} UTF-8 bytes`,
    );
  }
  return value;
}

/**
 * False for a string with a UTF-16 surrogate without its pair: UTF-8 cannot carry it, and encoding
 * turns every one into U+FFFD, so two different strings would become the same bytes (two
 * idempotency keys one key). String.prototype.isWellFormed is ES2024 (Node 20 has it; this
 * project's type library is ES2023).
 */
function isWellFormed(value: string): boolean {
  return (value as unknown as { isWellFormed(): boolean }).isWellFormed();
}

/** The one rule for `data` and `metadata`: bytes, or a string stored as UTF-8; absent is empty. */
export function eventBytes(value: unknown, index: number, field: 'data' | 'metadata'): Uint8Array {
  if (value === undefined) return EMPTY_BYTES;
  let bytes: Uint8Array | undefined;
  if (isByteArray(value)) bytes = value;
  else if (typeof value === 'string') {
    if (!isWellFormed(value))
      throw invalidEvent(index, `${field} holds a lone surrogate, which UTF-8 cannot carry`);
    bytes = utf8.encode(value);
  }
  if (bytes === undefined) throw invalidEvent(index, `${field} must be a Uint8Array or a string`);
  checkEventBytes(byteLengthOf(bytes), index, field);
  return bytes;
}

/**
 * The event's fields, read once, when its data and metadata are typed arrays of bytes or absent and
 * its crc is absent or unsigned (its type is checked by the caller); undefined for any other form.
 */
function checkedForm(
  type: unknown,
  data: unknown,
  metadata: unknown,
  crc: unknown,
): CheckedEvent | undefined {
  if (typeof type !== 'string') return undefined;
  if (
    crc !== undefined &&
    !(typeof crc === 'number' && Number.isInteger(crc) && crc >= 0 && crc <= 0xffffffff)
  ) {
    return undefined;
  }
  if (data !== undefined && !isByteArray(data)) return undefined;
  if (metadata !== undefined && !isByteArray(metadata)) return undefined;
  return { type, data, metadata, crc };
}

function invalidEvent(index: number, why: string): RingStoreError {
  return new RingStoreError('INVALID_EVENT', `event ${index}: ${why}`, { index });
}

function remember(names: Set<string>, name: string): void {
  if (names.size < MAX_REMEMBERED_NAMES) names.add(name);
}
