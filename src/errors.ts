/**
 * The one error catalog of ringstore. Every layer (model, storage, pipeline, api, cli, HTTP) throws
 * RingStoreError with a code from this table; nothing else decides an error's code or HTTP status.
 * docs/ERRORS.md documents the same table and test/errors.test.ts keeps the two in sync.
 *
 * Errors cross thread boundaries as plain `{ code, message, ...details }` objects (toWire/fromWire)
 * and are rebuilt on arrival, so callers always check `err.code`, never `instanceof` across threads.
 */

export interface ErrorSpec {
  readonly status: number;
  readonly message: string;
}

export const ERROR_CATALOG = {
  INVALID_NAME: { status: 400, message: 'a domain, aggregate type or event type name is not allowed' },
  INVALID_ID: { status: 400, message: 'an aggregate id must be an integer from 1 to 2^64-1' },
  INVALID_EVENT: { status: 400, message: 'an event is malformed' },
  INVALID_BATCH: {
    status: 400,
    message: 'a batch is malformed (no events, not an array, unknown fields, bad options)',
  },
  INVALID_VERSION: {
    status: 400,
    message: "expectedVersion must be 'any', 'none', 'exists' or a safe integer >= 0",
  },
  INVALID_IDEMPOTENCY_KEY: {
    status: 400,
    message: 'an idempotency key must be a well-formed string of 1 to 64 UTF-8 bytes',
  },
  INVALID_QUERY: { status: 400, message: 'a read option is out of range' },
  INVALID_OPTION: { status: 400, message: 'a configuration option is invalid' },
  INVALID_JSON: { status: 400, message: 'the request body is not valid JSON, or not valid UTF-8' },
  BAD_REQUEST: { status: 400, message: 'the HTTP request is malformed' },
  EVENT_TOO_LARGE: { status: 400, message: 'event data or metadata is longer than 65535 bytes' },
  BATCH_TOO_LARGE: { status: 400, message: 'a batch holds more events or bytes than allowed' },
  TOO_MANY_TYPES: { status: 400, message: 'a domain cannot register more than 65535 names of one kind' },
  CRC_MISMATCH: {
    status: 400,
    message: 'the CRC supplied with an event does not match its data and metadata',
  },
  UNAUTHORIZED: { status: 401, message: 'a valid bearer token is required' },
  FORBIDDEN: { status: 403, message: 'the token does not grant this scope on this domain' },
  NOT_FOUND: { status: 404, message: 'no such resource' },
  VERSION_CONFLICT: { status: 409, message: 'the instance is not at the expected version' },
  CONSUMER_CONFLICT: {
    status: 409,
    message: 'the consumer name is in use: by another domain, a running consumer or a newer position',
  },
  REQUEST_TIMEOUT: { status: 408, message: 'the request did not arrive within the time allowed' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'the request body is larger than allowed' },
  HEADERS_TOO_LARGE: { status: 431, message: 'the request headers are larger than allowed' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'the content type is not supported here' },
  SUBSCRIPTION_OVERFLOW: { status: 409, message: 'a subscriber fell too far behind and was ended' },
  CORRUPT_DATA: { status: 500, message: 'stored data failed a CRC or structure check' },
  UNSUPPORTED_FORMAT: {
    status: 500,
    message: 'the data directory was written in another on-disk format version',
  },
  INTERNAL: { status: 500, message: 'internal error' },
  BACKPRESSURE: { status: 503, message: 'the store is at capacity; retry later' },
  STORE_FAILED: { status: 503, message: 'the store has failed and accepts no more writes' },
  STORE_CLOSED: { status: 503, message: 'the store is closed' },
  STORE_LOCKED: { status: 409, message: 'the data directory is held by another open store' },
  STORE_INCOMPLETE: {
    status: 409,
    message: 'the data directory is a backup or repartition target that its tool has not finished',
  },
  TARGET_EXISTS: { status: 409, message: 'the target directory of a backup or repartition already exists' },
  INVALID_PLAN: { status: 400, message: 'a repartition plan is malformed or does not fit the store' },
  CLUSTER_UNAVAILABLE: {
    status: 503,
    message:
      'the NATS JetStream cluster did not answer; a put may or may not be stored: retry it with the same idempotency key',
  },
  NOT_OWNER: {
    status: 503,
    message: "no node could take this domain's writes now; nothing was stored, retry later",
  },
  REPLICA_DIVERGED: {
    status: 500,
    message: "a replicated generation does not apply to this node's store as it did on its owner",
  },
  MESSAGE_TOO_LARGE: {
    status: 413,
    message: "a batch is larger than the NATS server's max_payload allows in one message",
  },
  APPLY_TIMEOUT: {
    status: 504,
    message: 'this node did not apply the requested position within the wait',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

export const ERROR_CODES = Object.freeze(Object.keys(ERROR_CATALOG) as ErrorCode[]);

/** Extra machine-readable fields carried with an error (e.g. actualVersion for VERSION_CONFLICT). */
export type ErrorDetails = Record<string, string | number | boolean | null>;

export interface WireError {
  code: string;
  message: string;
  [detail: string]: string | number | boolean | null;
}

export class RingStoreError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message?: string, details: ErrorDetails = {}) {
    super(message ?? ERROR_CATALOG[code].message);
    this.name = 'RingStoreError';
    this.code = code;
    this.status = ERROR_CATALOG[code].status;
    this.details = details;
  }

  toWire(): WireError {
    return { ...this.details, code: this.code, message: this.message };
  }
}

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CATALOG, code);
}

/** Rebuilds an error that crossed a thread or process boundary; unknown codes become INTERNAL. */
export function fromWire(wire: WireError): RingStoreError {
  const { code, message, ...details } = wire;
  return new RingStoreError(isErrorCode(code) ? code : 'INTERNAL', message, details);
}

export function hasCode(err: unknown, code: ErrorCode): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

export function versionConflict(actualVersion: number, expected: string | number): RingStoreError {
  return new RingStoreError(
    'VERSION_CONFLICT',
    `expected version ${String(expected)} but the instance is at version ${actualVersion}`,
    { actualVersion },
  );
}

export function crcMismatch(index: number): RingStoreError {
  return new RingStoreError(
    'CRC_MISMATCH',
    `event ${index}: supplied CRC does not match its data and metadata`,
    {
      index,
    },
  );
}
