/**
 * How a party of the ring waits for a shared word to change: a named strategy, as the LMAX
 * Disruptor's WaitStrategy. Every party of the ring (producers, the CRC dispatcher, the writer) waits
 * only through one of these, and only through the Ring, which knows which word to watch.
 *
 *   'blocking'         Atomics.wait: the thread sleeps in the kernel. Worker threads only (it would
 *                      stop the main thread's event loop).
 *   'async'            Atomics.waitAsync: the thread's event loop keeps running while it waits. The
 *                      only choice on the main thread, and on a thread that awaits I/O meanwhile.
 *   'spin-then-block'  re-reads the word a bounded number of times before it blocks: work that is
 *                      microseconds away is met without a sleep, a futex wake-up and the waker's
 *                      notify. Worker threads only; it spends CPU, so it suits a machine with a core
 *                      to spare.
 *
 * Every wait is bounded: a strategy waits at most `timeoutMs`, never more than MAX_WAIT_MS, so a
 * notify that a waker skipped (or that raced with the wait) costs one timeout at worst, never a hang.
 */
export type WaitStrategyName = 'blocking' | 'async' | 'spin-then-block';

export const WAIT_STRATEGY_NAMES: readonly WaitStrategyName[] = ['blocking', 'async', 'spin-then-block'];

/** 'changed': the word no longer held `expected` (or a notify came); 'timed-out': the bound passed. */
export type WaitOutcome = 'changed' | 'timed-out';

export interface WaitStrategy {
  readonly name: WaitStrategyName;
  /** Waits until `words[index] !== expected`, a notify on it, or `timeoutMs` (bounded). */
  wait(
    words: Int32Array,
    index: number,
    expected: number,
    timeoutMs: number,
  ): WaitOutcome | Promise<WaitOutcome>;
}

/** The fallback bound of every wait, whatever a caller asks for. */
export const MAX_WAIT_MS = 1_000;

/** Re-reads of the word before 'spin-then-block' blocks (about 10–50 µs on current machines). */
export const DEFAULT_SPINS = 2_000;

function bound(timeoutMs: number): number {
  return timeoutMs >= 0 && timeoutMs < MAX_WAIT_MS ? timeoutMs : MAX_WAIT_MS;
}

/**
 * Atomics.waitAsync (Node ≥ 16) typed for this project's ES2023 lib. It returns synchronously when
 * the word already differs from `value` (async: false).
 */
type WaitAsyncResult =
  | { async: false; value: 'not-equal' | 'timed-out' }
  | { async: true; value: Promise<'ok' | 'timed-out'> };
type WaitAsync = (words: Int32Array, index: number, value: number, timeoutMs?: number) => WaitAsyncResult;
const atomicsWaitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

const asOutcome = (value: 'ok' | 'not-equal' | 'timed-out'): WaitOutcome =>
  value === 'timed-out' ? 'timed-out' : 'changed';

export const blockingWait: WaitStrategy = Object.freeze({
  name: 'blocking' as const,
  wait(words: Int32Array, index: number, expected: number, timeoutMs: number): WaitOutcome {
    return asOutcome(Atomics.wait(words, index, expected, bound(timeoutMs)));
  },
});

export const asyncWait: WaitStrategy = Object.freeze({
  name: 'async' as const,
  wait(words: Int32Array, index: number, expected: number, timeoutMs: number) {
    const result = atomicsWaitAsync(words, index, expected, bound(timeoutMs));
    return result.async ? result.value.then(asOutcome) : asOutcome(result.value);
  },
});

export function spinThenBlock(spins = DEFAULT_SPINS): WaitStrategy {
  return Object.freeze({
    name: 'spin-then-block' as const,
    wait(words: Int32Array, index: number, expected: number, timeoutMs: number): WaitOutcome {
      for (let i = 0; i < spins; i++) if (Atomics.load(words, index) !== expected) return 'changed';
      return blockingWait.wait(words, index, expected, timeoutMs) as WaitOutcome;
    },
  });
}

/** The strategy of a name, for options that travel to a thread as plain data. */
export function waitStrategy(name: WaitStrategyName): WaitStrategy {
  switch (name) {
    case 'blocking':
      return blockingWait;
    case 'async':
      return asyncWait;
    case 'spin-then-block':
      return spinThenBlock();
  }
}
