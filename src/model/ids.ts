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
 * Ids count seconds from 2008-01-01T00:00:00Z. Late enough that ids stay below 2^63 (signed 64-bit
 * columns elsewhere) until 2076 and valid until 2144; early enough that every id made after 2021 is
 * larger than any id the previous layout (milliseconds << 20) made at the same time.
 */
export const ID_EPOCH_SECONDS = 1_199_145_600;
export const NODE_BITS = 20;
export const SEQUENCE_BITS = 12;
const NODE_COUNT = 2 ** NODE_BITS;
const SEQUENCE_LIMIT = 2 ** SEQUENCE_BITS;

/** A uniformly random integer in min … max-1 (node:crypto's randomInt; tests pass a seeded one). */
export type RandomInt = (min: number, max: number) => number;

interface GeneratorState {
  readonly node: number;
  second: number;
  sequence: number;
}

function newState(random: RandomInt): GeneratorState {
  return { node: random(0, NODE_COUNT), second: 0, sequence: 0 };
}

/** One node id and sequence per thread: every store and client of a thread shares them. */
let threadState: GeneratorState | undefined;

/**
 * Makes unique, roughly time-ordered aggregate ids without coordination between processes:
 *
 *   63 ...................... 32 31 ............ 12 11 ........... 0
 *   [ seconds since 2008-01-01 ][ node id (random) ][ sequence in s ]
 *
 * The node id is drawn at random once per thread (generators made without an explicit random
 * source share it, and their sequence, so the stores and clients of one thread never collide with
 * each other). The sequence counts the ids of one second from 0; past 4,096 ids in one second the
 * generator moves on to the next second (ids then run ahead of the clock until the burst ends, still
 * unique and increasing). Ids of one generator are strictly increasing, also when the clock steps
 * back. Ids sort by second, then by node, then by sequence. 32 bits of seconds last until 2144.
 *
 * Collision bound: two generators can only make the same id if they drew the same node id, which
 * has probability 2^-20 for a pair of threads that make ids at the same time, whatever their rates
 * and however long they run (each restart draws again). With P such threads (processes, worker
 * threads) alive together, the probability that any two share a node id is below
 *
 *   P · (P − 1) / 2 / 2^20  ≈  P² / 2.1e6:   2 → 1e-6,  10 → 4.3e-5,  100 → 0.5 %
 *
 * e.g. two servers restarted daily, each making 100 ids/s: about one clash in 2,900 years. A clash,
 * if it happens, is not a single id: the two make the same ids in every second both are busy, until
 * one restarts (appends with expectedVersion 'none' then fail with VERSION_CONFLICT). The
 * previous layout (milliseconds + a random offset per millisecond) drew anew every millisecond:
 * about 0.8 colliding ids per day at 100 new ids/s. Drawing once is what buys this (a fresh random
 * draw per second, whatever its width, lets collisions accumulate with time and rate). For ids that
 * must never collide, take them from one generator (one store's newKey() or one server's POST
 * /v1/keys).
 */
export class KeyGenerator {
  readonly #state: GeneratorState;

  /** `random`: a source for this generator's own node id (tests); default: the thread's node id. */
  constructor(random?: RandomInt) {
    if (random === undefined) threadState ??= newState(randomInt);
    this.#state = random === undefined ? (threadState as GeneratorState) : newState(random);
  }

  /** This generator's node id (bits 12 … 31 of its ids). */
  get node(): number {
    return this.#state.node;
  }

  next(now: number = Date.now()): bigint {
    const state = this.#state;
    const second = Math.max(1, Math.floor(now / 1000) - ID_EPOCH_SECONDS);
    if (second > state.second) {
      state.second = second;
      state.sequence = 0;
    } else if (state.sequence >= SEQUENCE_LIMIT) {
      state.second += 1;
      state.sequence = 0;
    }
    const low = state.node * SEQUENCE_LIMIT + state.sequence;
    state.sequence++;
    return (BigInt(state.second) << 32n) | BigInt(low);
  }
}
