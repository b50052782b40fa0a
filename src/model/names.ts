import { RingStoreError } from '../errors.js';

/** Domains and aggregate types become folder and file names, so they are held to a strict allowlist. */
export const STORAGE_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/** Event types are stored as u16 codes, never as paths; they may be a little richer. */
export const EVENT_TYPE_PATTERN = /^[A-Za-z][A-Za-z0-9_.:-]{0,127}$/;

export type NameKind = 'domain' | 'aggregate type' | 'event type' | 'consumer';

function check(kind: NameKind, name: unknown, pattern: RegExp): string {
  if (typeof name !== 'string' || !pattern.test(name)) {
    const shown = typeof name === 'string' ? JSON.stringify(name.slice(0, 80)) : typeof name;
    throw new RingStoreError('INVALID_NAME', `invalid ${kind} name ${shown}: must match ${pattern.source}`, {
      kind,
    });
  }
  return name;
}

export function validateDomain(name: unknown): string {
  return check('domain', name, STORAGE_NAME_PATTERN);
}

export function validateAggregateType(name: unknown): string {
  return check('aggregate type', name, STORAGE_NAME_PATTERN);
}

export function validateEventType(name: unknown): string {
  return check('event type', name, EVENT_TYPE_PATTERN);
}

/** A durable consumer's name: it becomes the aggregate type that holds its positions. */
export function validateConsumerName(name: unknown): string {
  return check('consumer', name, STORAGE_NAME_PATTERN);
}
