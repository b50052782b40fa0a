import { describe, expect, it } from 'vitest';
import { fromWire } from '../../src/errors.js';
import { ClusterTarget, type DomainCommitter } from '../../src/pipeline/cluster/cluster-target.js';
import type { LogCut } from '../../src/storage/log-cut.js';
import type { AppendBatch, AppendOutcome } from '../../src/storage/types.js';

/**
 * The writer loop's target in cluster mode, with fake publishers: a commit is split by domain, each
 * owned domain's batches go to its publisher in ring order, outcomes come back in the commit's
 * order, a domain nobody here writes fails with NOT_OWNER, and commits run one after another.
 */
function batch(domain: string, id: number): AppendBatch {
  return {
    domain,
    aggregateType: 'a',
    aggregateId: BigInt(id),
    expectedVersion: 'any',
    idempotencyKey: undefined,
    events: [{ type: 'E', data: new Uint8Array(0), metadata: new Uint8Array(0), crc: 0 }],
  };
}

/** A publisher whose commits the test settles by hand; each batch's outcome names its id. */
class HeldPublisher implements DomainCommitter {
  active = true;
  readonly calls: { ids: bigint[]; settle: () => void }[] = [];

  commit(batches: readonly AppendBatch[]): Promise<AppendOutcome[]> {
    return new Promise((resolve) => {
      this.calls.push({
        ids: batches.map((b) => b.aggregateId),
        settle: () =>
          resolve(
            batches.map((b) => ({
              ok: true,
              result: {
                firstVersion: Number(b.aggregateId),
                lastVersion: Number(b.aggregateId),
                firstPosition: 0,
                generation: 1,
                timestamp: 0,
                durability: 'write',
                replayed: false,
              },
            })),
          ),
      });
    });
  }
}

const storage = {
  cut: (): LogCut => ({ generation: 0, lastTimestamp: 0, domains: [] }),
  cacheStats: () => [],
  failed: false,
  writeZerosAhead: () => false,
};

const turns = async (count = 10) => {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
};

describe('ClusterTarget', () => {
  it('commits each domain through its publisher, answers in commit order, refuses unowned domains', async () => {
    const a = new HeldPublisher();
    const b = new HeldPublisher();
    const events: string[] = [];
    const target = new ClusterTarget(
      (domain) => ({ a, b })[domain as 'a' | 'b'],
      storage,
      'write',
      () => events.push('after commit'),
    );
    expect(target.commitsAsync).toBe(true);
    expect(() => target.append()).toThrow(/appendOverlapped/);
    const commit = target.appendOverlapped([batch('a', 1), batch('b', 2), batch('c', 3), batch('a', 4)]);
    await turns();
    expect(a.calls.map((c) => c.ids)).toEqual([[1n, 4n]]);
    expect(b.calls.map((c) => c.ids)).toEqual([[2n]]);
    a.calls[0]!.settle();
    await turns();
    expect(events).toEqual([]);
    b.calls[0]!.settle();
    const report = await commit;
    expect(events).toEqual(['after commit']);
    const versions = report.outcomes.map((o) => (o.ok ? o.result.firstVersion : fromWire(o.error).code));
    expect(versions).toEqual([1, 2, 'NOT_OWNER', 4]);
    // The store's commits reach the main thread on their own: this report carries outcomes only.
    expect(report.delta.domains).toEqual([]);
    expect(report.appendedEvents).toBe(0);
  });

  it('hands the next commit to the publishers while one is out, and refuses a domain whose publisher stepped down', async () => {
    const a = new HeldPublisher();
    const target = new ClusterTarget(
      () => a,
      storage,
      'fsync',
      () => undefined,
    );
    const first = target.appendOverlapped([batch('a', 1)]);
    const second = target.appendOverlapped([batch('a', 2)]);
    // Both are with the publisher at once, in commit order (it pipelines their messages).
    expect(a.calls.map((c) => c.ids)).toEqual([[1n], [2n]]);
    a.calls[1]!.settle();
    a.calls[0]!.settle();
    expect((await first).outcomes[0]).toMatchObject({ ok: true, result: { firstVersion: 1 } });
    expect((await second).outcomes[0]).toMatchObject({ ok: true, result: { firstVersion: 2 } });
    a.active = false;
    const refused = (await target.appendOverlapped([batch('a', 3)])).outcomes[0]!;
    expect(refused.ok ? undefined : refused.error.code).toBe('NOT_OWNER');
    expect(a.calls).toHaveLength(2);
  });

  it("reports the store's failure to the writer loop once the store has failed", () => {
    const failing = { ...storage, failed: false };
    const target = new ClusterTarget(
      () => undefined,
      failing,
      'write',
      () => undefined,
    );
    expect(target.failure).toBeUndefined();
    failing.failed = true;
    expect(target.failure).toMatchObject({ code: 'STORE_FAILED' });
  });

  it("writes this node's zeros ahead when the loop asks (the store's own upkeep, as on a single node)", () => {
    let zeroChunks = 2;
    const target = new ClusterTarget(
      () => undefined,
      { ...storage, writeZerosAhead: () => zeroChunks-- > 0 },
      'fsync',
      () => undefined,
    );
    expect([target.writeZerosAhead(), target.writeZerosAhead(), target.writeZerosAhead()]).toEqual([
      true,
      true,
      false,
    ]);
  });
});
