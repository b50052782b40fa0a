import { ERROR_CATALOG, isErrorCode, RingStoreError, type WireError } from '../../errors.js';

/**
 * Every error an HTTP answer, an NDJSON result line or an SSE error message carries comes through
 * here: anything thrown becomes a catalog error, and what goes on the wire never holds more than
 * the catalog allows a client to see.
 */

/** fastify's own error codes, mapped onto the catalog so every answer has one shape. */
const FASTIFY_CODES: Record<string, RingStoreError['code']> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON',
  FST_ERR_BAD_URL: 'BAD_REQUEST',
  FST_ERR_ASYNC_CONSTRAINT: 'BAD_REQUEST',
};

/**
 * Maps anything thrown in a request to a catalog error; unknown errors become INTERNAL, and so does
 * a thrown value that throws when it is looked at (a getter or a proxy trap of a custom store's
 * error): the answer, the NDJSON line or the SSE message still goes out.
 */
export function toRingStoreError(err: unknown): RingStoreError {
  try {
    return catalogErrorOf(err);
  } catch {
    return new RingStoreError('INTERNAL');
  }
}

function catalogErrorOf(err: unknown): RingStoreError {
  if (err instanceof RingStoreError) return err;
  const e = err as { code?: unknown; statusCode?: unknown; message?: unknown } | null;
  if (e && typeof e.code === 'string') {
    const mapped = FASTIFY_CODES[e.code];
    if (mapped) return new RingStoreError(mapped);
    // A RingStoreError rebuilt elsewhere (another realm or thread) still carries a catalog code.
    if (isErrorCode(e.code) && typeof e.message === 'string') {
      const details = (e as { details?: unknown }).details;
      return new RingStoreError(e.code, e.message, (details ?? {}) as RingStoreError['details']);
    }
  }
  if (e && typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new RingStoreError('BAD_REQUEST');
  }
  return new RingStoreError('INTERNAL');
}

/**
 * The error object an answer carries. Server-side errors (5xx) may hold file names, offsets or
 * system messages: they go out with the catalog text only, and the server log keeps the rest.
 */
export function publicError(error: RingStoreError): WireError {
  return error.status >= 500
    ? { code: error.code, message: ERROR_CATALOG[error.code].message }
    : error.toWire();
}

/**
 * How a failed request is logged: `error` (with its cause) for a server-side fault, `warn` for a
 * wait that ran out (APPLY_TIMEOUT: a replica behind the asked position, an answer the client asked
 * for by waiting), nothing for client errors, for shedding load (BACKPRESSURE) and for a store
 * that is closing (STORE_CLOSED), which the answers themselves report.
 */
export function failureLogLevel(error: RingStoreError): 'error' | 'warn' | undefined {
  if (error.status < 500 || error.code === 'STORE_CLOSED' || error.code === 'BACKPRESSURE') return undefined;
  return error.code === 'APPLY_TIMEOUT' ? 'warn' : 'error';
}
