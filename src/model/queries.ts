import { RingStoreError } from '../errors.js';
import type { GetOptions, ReadOptions } from '../types.js';
import { LIMITS } from './limits.js';
import { validateEventType } from './names.js';

/** GetOptions with defaults applied; `toVersion` and `limit` are Infinity when unbounded. */
export interface ValidGetOptions {
  fromVersion: number;
  toVersion: number;
  limit: number;
  atGeneration: number;
  verifyCrc: boolean;
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

function optionsObject(options: unknown): Record<string, unknown> {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null) {
    throw new RingStoreError('INVALID_QUERY', 'read options must be an object');
  }
  return options as Record<string, unknown>;
}

export function validateGetOptions(options?: GetOptions): ValidGetOptions {
  const o = optionsObject(options);
  const max = LIMITS.maxSafeInteger;
  return {
    fromVersion: Math.max(1, integerOption('fromVersion', o.fromVersion, 0, max, 1)),
    toVersion: integerOption('toVersion', o.toVersion, 0, max, Number.POSITIVE_INFINITY),
    limit: integerOption('limit', o.limit, 0, max, Number.POSITIVE_INFINITY),
    atGeneration: integerOption('atGeneration', o.atGeneration, 0, max, Number.POSITIVE_INFINITY),
    verifyCrc: o.verifyCrc === true,
  };
}

export function validateReadOptions(options?: ReadOptions): ValidReadOptions {
  const o = optionsObject(options);
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
    verifyCrc: o.verifyCrc === true,
  };
}
