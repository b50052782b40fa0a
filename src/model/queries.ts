import { RingStoreError } from '../errors.js';
import type { GetOptions, ReadOptions } from '../types.js';
import { rejectUnknownOptions } from './known-options.js';
import { LIMITS } from './limits.js';
import { validateEventType } from './names.js';

/** The order an instance read returns its events in: ascending or descending versions. */
export type ReadDirection = 'forward' | 'backward';

/**
 * A forward range of an instance, GetOptions with defaults applied: what a store's reader reads.
 * `toVersion` and `limit` are Infinity when unbounded.
 */
export interface ValidGetOptions {
  fromVersion: number;
  toVersion: number;
  limit: number;
  atGeneration: number;
  verifyCrc: boolean;
}

/**
 * GetOptions with defaults applied, in either direction. `fromVersion` is where reading starts and
 * `toVersion` where it stops, in reading order: forward, from 1 (0 is read as 1) up to the
 * instance's version (Infinity); backward, from the instance's version (Infinity) down to 1 (0 is
 * read as 1). `readInstance` (instance-read.ts) turns a backward read into a forward range.
 */
export interface ValidInstanceRead extends ValidGetOptions {
  direction: ReadDirection;
}

/** ReadOptions with defaults applied; time bounds are ±Infinity when absent. */
export interface ValidReadOptions {
  fromPosition: number;
  limit: number;
  types: ReadonlySet<string> | undefined;
  fromTime: number;
  toTime: number;
  atGeneration: number;
  verifyCrc: boolean;
}

function integerOption(name: string, value: unknown, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new RingStoreError('INVALID_QUERY', `${name} must be an integer from ${min} to ${max}`, {
      option: name,
    });
  }
  return value;
}

/** The options of an instance read (get), as every boundary names them (HTTP: query parameters). */
export const GET_OPTION_NAMES = [
  'direction',
  'fromVersion',
  'toVersion',
  'limit',
  'atGeneration',
  'verifyCrc',
] as const;
/** The options of a domain read (read), as every boundary names them. */
export const READ_OPTION_NAMES = [
  'fromPosition',
  'limit',
  'types',
  'fromTime',
  'toTime',
  'atGeneration',
  'verifyCrc',
] as const;
const GET_OPTIONS: ReadonlySet<string> = new Set(GET_OPTION_NAMES);
const READ_OPTIONS: ReadonlySet<string> = new Set(READ_OPTION_NAMES);

function optionsObject(options: unknown, known: ReadonlySet<string>): Record<string, unknown> {
  if (options === undefined) return {};
  rejectUnknownOptions(options, known, 'INVALID_QUERY', 'read option');
  return options as Record<string, unknown>;
}

/** `verifyCrc`: a boolean, absent is false. */
function verifyCrcOption(value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') {
    throw new RingStoreError('INVALID_QUERY', 'verifyCrc must be true or false', { option: 'verifyCrc' });
  }
  return value;
}

/** A log position given on its own (a consumer's nextPosition): an integer from 0 to 2^53-1. */
export function validatePosition(option: string, value: unknown): number {
  if (value === undefined) {
    throw new RingStoreError('INVALID_QUERY', `${option} is required`, { option });
  }
  return integerOption(option, value, 0, LIMITS.maxSafeInteger, 0);
}

/** The one validator of `direction`: absent is 'forward'. */
export function validateDirection(value: unknown): ReadDirection {
  if (value === undefined || value === 'forward') return 'forward';
  if (value === 'backward') return 'backward';
  throw new RingStoreError('INVALID_QUERY', "direction must be 'forward' or 'backward'", {
    option: 'direction',
  });
}

export function validateInstanceRead(options?: GetOptions): ValidInstanceRead {
  const o = optionsObject(options, GET_OPTIONS);
  const max = LIMITS.maxSafeInteger;
  const infinity = Number.POSITIVE_INFINITY;
  const direction = validateDirection(o.direction);
  const backward = direction === 'backward';
  return {
    direction,
    fromVersion: backward
      ? integerOption('fromVersion', o.fromVersion, 0, max, infinity)
      : Math.max(1, integerOption('fromVersion', o.fromVersion, 0, max, 1)),
    toVersion: backward
      ? Math.max(1, integerOption('toVersion', o.toVersion, 0, max, 1))
      : integerOption('toVersion', o.toVersion, 0, max, infinity),
    limit: integerOption('limit', o.limit, 0, max, infinity),
    atGeneration: integerOption('atGeneration', o.atGeneration, 0, max, infinity),
    verifyCrc: verifyCrcOption(o.verifyCrc),
  };
}

/**
 * GetOptions of a forward read, for code that reads a forward range directly (StorageEngine,
 * instance streams). A backward read fails with INVALID_QUERY rather than being read forward.
 */
export function validateGetOptions(options?: GetOptions): ValidGetOptions {
  const { direction, ...range } = validateInstanceRead(options);
  if (direction === 'backward') {
    throw new RingStoreError('INVALID_QUERY', 'this store reads instances forward only', {
      option: 'direction',
    });
  }
  return range;
}

export function validateReadOptions(options?: ReadOptions): ValidReadOptions {
  const o = optionsObject(options, READ_OPTIONS);
  const max = LIMITS.maxSafeInteger;
  let types: Set<string> | undefined;
  if (o.types !== undefined) {
    if (!Array.isArray(o.types)) {
      throw new RingStoreError('INVALID_QUERY', 'types must be an array of event type names', {
        option: 'types',
      });
    }
    types = new Set(o.types.map((t) => validateEventType(t)));
  }
  return {
    fromPosition: integerOption('fromPosition', o.fromPosition, 0, max, 0),
    limit: integerOption('limit', o.limit, 0, LIMITS.maxReadLimit, LIMITS.defaultReadLimit),
    types,
    fromTime: integerOption('fromTime', o.fromTime, 0, max, Number.NEGATIVE_INFINITY),
    toTime: integerOption('toTime', o.toTime, 0, max, Number.POSITIVE_INFINITY),
    atGeneration: integerOption('atGeneration', o.atGeneration, 0, max, Number.POSITIVE_INFINITY),
    verifyCrc: verifyCrcOption(o.verifyCrc),
  };
}
