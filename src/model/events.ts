import { RingStoreError } from '../errors.js';
import type { ExpectedVersion } from '../types.js';
import { crc32 } from './crc.js';

/** The bytes of an absent data or metadata: shared, since zero bytes cannot be written to. */
export const EMPTY_BYTES = new Uint8Array(0);

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
    `invalid expectedVersion ${describeValue(value)}: use 'any', 'none', 'exists' or an integer >= 0`,
  );
}

/** A refused value as a message shows it: strings quoted, every other kind as String() writes it. */
function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.slice(0, 40));
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'object' && value !== null) return Array.isArray(value) ? 'an array' : 'an object';
  return String(value);
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
