import { describe, expect, it } from 'vitest';
import { decideGeneration } from '../../src/pipeline/cluster/generation-decision.js';
import type { AppendBatch } from '../../src/storage/types.js';
import type { ExpectedVersion, PutResult } from '../../src/types.js';

/**
 * The owner's decision before a generation message (docs/CLUSTER.md, step 2), against a fake store
 * state: exact versions, replays, conflicts, the size limit, and what waits for the next message.
 */
function batch(
  id: number,
  expectedVersion: ExpectedVersion,
  events = 1,
  key?: string,
  bytes = 0,
): AppendBatch {
  return {
    domain: 'd',
    aggregateType: 'a',
    aggregateId: BigInt(id),
    expectedVersion,
    idempotencyKey: key,
    events: Array.from({ length: events }, () => ({
      type: 'E',
      data: new Uint8Array(bytes),
      metadata: new Uint8Array(0),
      crc: 0,
    })),
  };
}

const stored: PutResult = {
  firstVersion: 3,
  lastVersion: 3,
  firstPosition: 7,
  generation: 5,
  timestamp: 1000,
  durability: 'fsync',
  replayed: false,
};

const state = {
  version: (_d: string, _t: string, id: bigint) => (id === 1n ? 3 : 0),
  keyedResult: (_d: string, _t: string, id: bigint, key: string) =>
    id === 1n && key === 'k3' ? stored : undefined,
};

describe('decideGeneration', () => {
  it('takes batches with the exact version they extend, counting earlier batches of the message', () => {
    const decisions = decideGeneration(
      state,
      'd',
      [batch(1, 'any', 2), batch(1, 5), batch(2, 'none')],
      1 << 20,
    );
    expect(decisions.map((d) => (d.kind === 'take' ? d.batch.expectedVersion : d.kind))).toEqual([3, 5, 0]);
  });

  it('replays a key seen before, refuses a conflict, and holds a second batch with a key already taken', () => {
    const decisions = decideGeneration(
      state,
      'd',
      [batch(1, 'any', 1, 'k3'), batch(1, 0), batch(2, 'any', 1, 'k'), batch(2, 'any', 1, 'k'), batch(2, 1)],
      1 << 20,
    );
    expect(decisions.map((d) => d.kind)).toEqual(['replay', 'refuse', 'take', 'later', 'take']);
    expect(decisions[0]).toMatchObject({ kind: 'replay', result: { ...stored, replayed: true } });
    expect(decisions[1]).toMatchObject({ kind: 'refuse', error: { code: 'VERSION_CONFLICT' } });
  });

  it('refuses a batch that can never fit in one message; the rest of a full message waits, in order', () => {
    const max = 8 * 1024;
    const decisions = decideGeneration(
      state,
      'd',
      [
        batch(2, 'any', 1, undefined, 20_000),
        batch(3, 'any', 1, undefined, 4000),
        batch(4, 'any', 1, undefined, 4000),
        batch(5, 'any'),
      ],
      max,
    );
    expect(decisions.map((d) => d.kind)).toEqual(['refuse', 'take', 'later', 'later']);
    expect(decisions[0]).toMatchObject({ kind: 'refuse', error: { code: 'MESSAGE_TOO_LARGE' } });
  });
});
