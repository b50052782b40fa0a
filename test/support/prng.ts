/** A small seeded PRNG (mulberry32): deterministic test workloads from a printed seed. One copy, in bench/. */
export { seededRandom as mulberry32 } from '../../bench/workload.js';
