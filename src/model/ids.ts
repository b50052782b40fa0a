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

/** Low 32 bits of an id: a run of consecutive values per generator and second. */
const LOW_BITS = 32n;
const LOW_MAX = 0xffff_ffff;
/** A second's run starts at a uniformly random value in 1 … RUN_START_SPAN, leaving 2^31 values of room. */
export const RUN_START_SPAN = 2 ** 31;

/** A uniformly random integer in min … max-1 (node:crypto's randomInt; tests pass a seeded one). */
export type RandomInt = (min: number, max: number) => number;

/**
 * Makes unique, roughly time-ordered aggregate ids without coordination between processes:
 *
 *   63 ...................... 32 31 ....................... 0
 *   [ seconds since Unix epoch ][ run position in that second ]
 *
 * In each second a generator hands out a run of consecutive values starting at a random point in
 * 1 … 2^31 (so a second's run can never overflow in practice; if it did, the generator moves on to
 * the next second). Ids of one generator are strictly increasing, also when the clock steps back,
 * so one generator (one store, one `POST /v1/keys` server) never repeats an id. Ids are ordered by
 * their second; within a second, by generator and position. 32 bits of seconds last until
 * 2106-02-07, and every id is larger than any id of the previous layout (milliseconds << 20), so
 * ids keep sorting by time across the upgrade and never meet old ones.
 *
 * Collision bound for independent generators (processes): two generators collide only in a
 * second in which both make ids, and only if their runs [a, a+k) and [b, b+m) overlap, with a and
 * b uniform over 2^31 values: probability < (k + m) / 2^31. Summed over the pairs of P generators
 * that make Λ ids per second together, the expected number of colliding ids per day is below
 *
 *   86,400 · (P − 1) · Λ / 2^31  ≈  4.0e-5 · (P − 1) · Λ
 *
 * e.g. 2 processes at 100 new ids/s in total: 0.004 per day (one in ~250 days); the previous
 * layout (milliseconds + 19 random bits per id) gave ~0.8 per day. Coarser time is what buys this:
 * one-second ticks leave 32 bits below the time instead of 20, and a generator's ids of one second
 * form a single run, so two generators meet with a probability that grows with k + m, not k · m.
 * For ids that must never collide, take them from one generator (the store's newKey() or the
 * server's POST /v1/keys).
 */
export class KeyGenerator {
  readonly #random: RandomInt;
  #second = 0;
  #nextLow = 0;

  constructor(random: RandomInt = randomInt) {
    this.#random = random;
  }

  next(now: number = Date.now()): bigint {
    const second = Math.max(1, Math.floor(now / 1000));
    if (second > this.#second) this.#startRun(second);
    else if (this.#nextLow > LOW_MAX) this.#startRun(this.#second + 1);
    const id = (BigInt(this.#second) << LOW_BITS) | BigInt(this.#nextLow);
    this.#nextLow++;
    return id;
  }

  #startRun(second: number): void {
    this.#second = second;
    this.#nextLow = this.#random(1, RUN_START_SPAN + 1);
  }
}
