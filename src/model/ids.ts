import { randomInt } from 'node:crypto';
import { RingStoreError } from '../errors.js';
import { LIMITS } from './limits.js';

const DECIMAL_ID = /^[1-9][0-9]{0,19}$/;

/**
 * Accepts a bigint, a safe positive integer number or a decimal string (the JSON/URL form) and
 * returns the id as a bigint in 1 … 2^64-1. Anything else is INVALID_ID.
 */
export function parseAggregateId(value: unknown): bigint {
  let id: bigint | undefined;
  if (typeof value === 'bigint') id = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) id = BigInt(value);
  else if (typeof value === 'string' && DECIMAL_ID.test(value)) id = BigInt(value);
  if (id === undefined || id < 1n || id > LIMITS.maxAggregateId) {
    const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 40)) : String(value);
    throw new RingStoreError(
      'INVALID_ID',
      `invalid aggregate id ${shown}: must be an integer from 1 to 2^64-1`,
    );
  }
  return id;
}

/**
 * Makes unique, roughly time-ordered aggregate ids:
 *
 *   63 ............................ 20 19 ............. 0
 *   [ milliseconds since Unix epoch ][ sequence in that ms ]
 *
 * 44 bits of milliseconds last until the year 2527. The sequence starts at a random offset each
 * millisecond (so two processes rarely collide) and carries into the millisecond field when it
 * overflows, which keeps ids strictly increasing within one generator.
 */
export class KeyGenerator {
  #last = 0n;

  next(now: number = Date.now()): bigint {
    const base = BigInt(Math.max(1, Math.floor(now))) << 20n;
    const candidate = base | BigInt(randomInt(0, 1 << 19));
    this.#last = candidate > this.#last ? candidate : this.#last + 1n;
    return this.#last;
  }
}
