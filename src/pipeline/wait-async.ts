/**
 * Atomics.waitAsync (Node ≥ 16) typed for this project's ES2023 lib. The only way the main thread
 * waits on a shared word: it never blocks, and it returns synchronously when the word already
 * differs from `value` (async: false).
 */
export type WaitAsyncResult =
  | { async: false; value: 'not-equal' | 'timed-out' }
  | { async: true; value: Promise<'ok' | 'timed-out'> };

type WaitAsync = (words: Int32Array, index: number, value: number, timeoutMs?: number) => WaitAsyncResult;

const atomicsWaitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

export function waitAsync(
  words: Int32Array,
  index: number,
  value: number,
  timeoutMs?: number,
): WaitAsyncResult {
  return atomicsWaitAsync(words, index, value, timeoutMs);
}
