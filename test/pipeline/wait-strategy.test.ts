import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import {
  asyncWait,
  blockingWait,
  MAX_WAIT_MS,
  spinThenBlock,
  WAIT_STRATEGY_NAMES,
  type WaitStrategy,
  waitStrategy,
} from '../../src/pipeline/wait-strategy.js';

const strategies: WaitStrategy[] = [blockingWait, asyncWait, spinThenBlock(100)];

/** A thread that stores `value` into word 0 and notifies it after a short sleep of its own. */
function notifyFromAnotherThread(words: Int32Array, value: number): Worker {
  return new Worker(
    `const { workerData } = require('node:worker_threads');
     const words = new Int32Array(workerData.sab);
     Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
     Atomics.store(words, 0, workerData.value);
     Atomics.notify(words, 0);`,
    { eval: true, workerData: { sab: words.buffer, value } },
  );
}

describe('wait strategies', () => {
  it('has one strategy per name', () => {
    expect(WAIT_STRATEGY_NAMES.map((name) => waitStrategy(name).name)).toEqual([...WAIT_STRATEGY_NAMES]);
  });

  for (const strategy of strategies) {
    it(`${strategy.name}: returns 'changed' at once when the word no longer holds the expected value`, async () => {
      const words = new Int32Array(new SharedArrayBuffer(8));
      words[0] = 5;
      expect(await strategy.wait(words, 0, 4, 10_000)).toBe('changed');
    });

    it(`${strategy.name}: returns 'timed-out' when nothing changes within the timeout`, async () => {
      const words = new Int32Array(new SharedArrayBuffer(8));
      expect(await strategy.wait(words, 0, 0, 5)).toBe('timed-out');
    });

    it(`${strategy.name}: returns 'changed' when another thread stores and notifies`, async () => {
      const words = new Int32Array(new SharedArrayBuffer(8));
      const worker = notifyFromAnotherThread(words, 1);
      try {
        expect(await strategy.wait(words, 0, 0, MAX_WAIT_MS)).toBe('changed');
        expect(Atomics.load(words, 0)).toBe(1);
      } finally {
        await worker.terminate();
      }
    });
  }

  it('bounds every wait: an unbounded timeout becomes MAX_WAIT_MS, so a missed notify cannot hang', async () => {
    const words = new Int32Array(new SharedArrayBuffer(8));
    expect(await asyncWait.wait(words, 0, 0, Number.POSITIVE_INFINITY)).toBe('timed-out');
    expect(await asyncWait.wait(words, 0, 0, -1)).toBe('timed-out');
  });
});
