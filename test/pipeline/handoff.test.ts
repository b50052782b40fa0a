import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Handoff } from '../../src/pipeline/handoff.js';

const endOfTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
const SEED = 20_261_124;

describe('Handoff', () => {
  it('hands on once at the end of a turn, however many records the turn published', async () => {
    let flushes = 0;
    const handoff = new Handoff(() => flushes++, 0);
    for (let i = 0; i < 1_000; i++) handoff.published(1_000);
    expect(flushes).toBe(0);
    await endOfTurn();
    expect(flushes).toBe(1);
    await endOfTurn();
    expect(flushes).toBe(1);
  });

  it('hands on once per event-loop iteration, not once per callback of it (requests of one poll phase)', async () => {
    let flushes = 0;
    const handoff = new Handoff(() => flushes++, 0);
    // Five callbacks of one iteration, each with its own microtask checkpoint, as a server's requests.
    const callbacks = Array.from(
      { length: 5 },
      () =>
        new Promise<void>((resolve) =>
          setImmediate(() => {
            handoff.published(100);
            resolve();
          }),
        ),
    );
    await Promise.all(callbacks);
    expect(flushes).toBe(0);
    await endOfTurn();
    expect(flushes).toBe(1);
  });

  it('hands on within the turn each time handoffBytes accumulated, and the rest at its end', async () => {
    let flushes = 0;
    const handoff = new Handoff(() => flushes++, 100);
    handoff.published(60);
    expect(flushes).toBe(0);
    handoff.published(60);
    expect(flushes).toBe(1);
    await endOfTurn();
    expect(flushes).toBe(1); // nothing was left over after the in-turn hand-off
    handoff.published(10);
    await endOfTurn();
    expect(flushes).toBe(2);
  });

  it('never leaves a published record behind and never hands on an empty slice (seeded)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 4_096 }),
        fc.array(fc.array(fc.integer({ min: 8, max: 2_048 }), { maxLength: 40 }), { maxLength: 6 }),
        async (threshold, turns) => {
          let published = 0;
          let handedOn = 0;
          let pendingAtFlush: number[] = [];
          const handoff = new Handoff(() => {
            pendingAtFlush.push(published - handedOn);
            handedOn = published;
          }, threshold);
          for (const turn of turns) {
            pendingAtFlush = [];
            for (const bytes of turn) {
              published += bytes;
              handoff.published(bytes);
              // In-turn hand-offs happen exactly when a slice reached the threshold.
              if (threshold > 0) expect(published - handedOn).toBeLessThan(threshold);
            }
            await endOfTurn();
            expect(handedOn).toBe(published);
            expect(pendingAtFlush.every((bytes) => bytes > 0)).toBe(true);
          }
        },
      ),
      { seed: SEED, numRuns: 200 },
    );
  });
});
