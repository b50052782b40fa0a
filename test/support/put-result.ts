import type { PutResult } from '../../src/types.js';

/** A put result for fake stores in HTTP tests: version 1 at position 0 of generation 1, durable. */
export const PUT_RESULT: PutResult = Object.freeze({
  firstVersion: 1,
  lastVersion: 1,
  firstPosition: 0,
  generation: 1,
  timestamp: 5,
  durability: 'fsync',
  replayed: false,
});
