import { describe, expect, it } from 'vitest';
import { RingStoreError } from '../../src/errors.js';
import { eventCrc } from '../../src/model/events.js';
import { BatchEncoder, type EncodableBatch } from '../../src/pipeline/batch-codec.js';
import { checkCrcRange, publishedRunEnd } from '../../src/pipeline/crc-stage.js';
import { errorCodeNumber } from '../../src/pipeline/record-results.js';
import { Ring } from '../../src/pipeline/ring.js';
import {
  CONTROL,
  LIFECYCLE_FAILED,
  STATE_COMMITTED,
  STATE_PUBLISHED,
  STATE_VALID,
} from '../../src/pipeline/ring-layout.js';
import { blockingWait } from '../../src/pipeline/wait-strategy.js';
import {
  type AppendTarget,
  type CommitMessage,
  type CutMessage,
  type FailedMessage,
  WriterLoop,
} from '../../src/pipeline/writer-loop.js';
import type { LogCut } from '../../src/storage/log-cut.js';
import type { AppendBatch, AppendReport } from '../../src/storage/types.js';
import { reportOf } from '../fixtures/append-report.js';
import { appendEventsOf } from '../fixtures/event-lists.js';

/**
 * Proves that the writer loop overlaps commits without measuring time: the storage target's sync
 * of each commit is a promise the test settles by hand, so "commit N+1 was checksummed and packed
 * while commit N's sync was still open" is an order of recorded events, not a race.
 *
 *   test                          WriterLoop.run()                  InstrumentedTarget
 *   publish N, CRC stage ──────►  scan, decode ──appendOverlapped──► "append N", sync N held
 *   publish N+1, CRC stage ────►  scan, decode ──appendOverlapped──► "append N+1", sync N+1 held
 *   settle sync N+1, then N ───────────────────────────────────────► "sync …" (in the order given)
 *                                 finish N, finish N+1 (commit order) ► publish(commit)
 */

interface HeldSync {
  batches: AppendBatch[];
  resolve(report: AppendReport): void;
  reject(error: Error): void;
}

/** An AppendTarget whose overlapped commits wait for the test to settle their sync. */
class InstrumentedTarget implements AppendTarget {
  readonly events: string[] = [];
  readonly syncs: HeldSync[] = [];

  append(): AppendReport {
    throw new Error('the overlapped loop must not call append()');
  }

  /** A cut after the commits handed over so far: its generation is their number. */
  cut(): LogCut {
    this.events.push('cut');
    return { generation: this.syncs.length, lastTimestamp: 0, domains: [] };
  }

  appendOverlapped(batches: readonly AppendBatch[]): Promise<AppendReport> {
    const commit = this.syncs.length + 1;
    // What the target receives is checksummed and packed: every event carries the CRC that the CRC
    // stage computed, over data and metadata read straight from the ring.
    for (const batch of batches)
      for (const event of appendEventsOf(batch.events))
        if (event.crc !== eventCrc(event)) throw new Error(`commit ${commit}: an event without its CRC`);
    this.events.push(`append ${commit}`);
    return new Promise<AppendReport>((resolve, reject) => {
      this.syncs.push({
        batches: [...batches],
        resolve: (report) => {
          this.events.push(`sync ${commit} resolved`);
          resolve(report);
        },
        reject: (error) => {
          this.events.push(`sync ${commit} failed`);
          reject(error);
        },
      });
    });
  }
}

const okReport = (batches: readonly AppendBatch[], generation: number): AppendReport =>
  reportOf(
    batches.map((_, i) => ({
      ok: true as const,
      result: {
        firstVersion: i + 1,
        lastVersion: i + 1,
        firstPosition: i,
        generation,
        timestamp: 0,
        durability: 'fsync' as const,
        replayed: false,
      },
    })),
    generation,
  );

function batchOf(id: number): EncodableBatch {
  return {
    domain: 'd',
    aggregateType: 'a',
    aggregateId: BigInt(id),
    expectedVersion: 'any',
    idempotencyKey: undefined,
    events: [
      {
        type: 'E',
        data: new TextEncoder().encode(`{"n":${id}}`),
        metadata: new TextEncoder().encode('{"m":1}'),
      },
    ],
  };
}

/**
 * Publishes batches as a producer does with a CRC pool (claim, encode without CRCs, PUBLISHED), then
 * runs the CRC stage over them (VALID, writer woken). Returns the records.
 */
function publishAndCheck(ring: Ring, ids: number[]): number[] {
  const start = Atomics.load(ring.words, CONTROL.claimCursor);
  const encoder = new BatchEncoder();
  const records = ids.map((id) => {
    const batch = batchOf(id);
    const record = ring.tryClaim(encoder.measure(batch, false));
    encoder.write(ring.bytes, ring.view, record, batch, false);
    ring.setState(record, STATE_PUBLISHED);
    return record;
  });
  const run = { published: 0 };
  const end = publishedRunEnd(ring, start, 1 << 20, run);
  expect(run.published).toBe(ids.length);
  const counts = { valid: 0, rejected: 0 };
  checkCrcRange(ring, { start, end }, counts);
  expect(counts).toEqual({ valid: ids.length, rejected: 0 });
  return records;
}

/** Waits for a condition, yielding to the event loop between checks; fails after a bounded number. */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let turn = 0; turn < 10_000; turn++) {
    if (condition()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`never happened: ${what}`);
}

/** A few event-loop turns: enough for any settled promise chain to run. */
async function turns(count = 20): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** A target whose commits are always asynchronous (as a cluster's, which waits for JetStream). */
class AsyncOnlyTarget extends InstrumentedTarget {
  readonly commitsAsync = true;
}

/** A target with upkeep (as StorageWriter.writeZerosAhead): it has `left` pieces to do, then none. */
class UpkeepTarget extends InstrumentedTarget {
  left = 3;
  fails = false;

  writeZerosAhead(): boolean {
    if (this.fails) throw new RingStoreError('STORE_FAILED', 'a write of zeros ahead failed');
    if (this.left === 0) return false;
    this.left--;
    this.events.push('upkeep');
    return true;
  }
}

function setup(durability: 'fsync' | 'write' = 'fsync', target = new InstrumentedTarget()) {
  const ring = Ring.create(1 << 16);
  const messages: (CommitMessage | FailedMessage | CutMessage)[] = [];
  const loop = new WriterLoop(ring, target, {
    durability,
    maxBatchesPerCycle: 100,
    idleWait: blockingWait,
    idleWaitMs: 5,
    claimTimeoutMs: 60_000,
    publish: (message) => messages.push(message),
  });
  const committed = () => Atomics.load(ring.words, CONTROL.committedCursor);
  return { ring, target, messages, loop, committed };
}

describe('WriterLoop overlap (instrumented storage target, no timing)', () => {
  it('packs and hands over commit N+1 while the sync of commit N is still open; acks in commit order', async () => {
    const { ring, target, messages, loop, committed } = setup();
    const start = committed();
    // Commit N is published before the loop runs: the loop stages it at once.
    const first = publishAndCheck(ring, [1, 2]);
    const firstEnd = Atomics.load(ring.words, CONTROL.claimCursor);
    const running = loop.run();
    expect(target.events).toEqual(['append 1']);
    expect(target.syncs[0]!.batches.map((b) => b.aggregateId)).toEqual([1n, 2n]);

    // A producer keeps publishing while sync N is open; the loop takes it as commit N+1.
    const second = publishAndCheck(ring, [3, 4, 5]);
    const secondEnd = Atomics.load(ring.words, CONTROL.claimCursor);
    await until(() => target.syncs.length === 2, 'commit N+1 handed to storage');
    expect(target.events).toEqual(['append 1', 'append 2']);
    expect(target.syncs[1]!.batches.map((b) => b.aggregateId)).toEqual([3n, 4n, 5n]);
    // Nothing is acknowledged while sync N is open.
    expect(messages).toEqual([]);
    expect(committed()).toBe(start);
    expect([...first, ...second].map((r) => ring.state(r))).toEqual(Array(5).fill(STATE_VALID));

    // Sync N+1 finishes first: still nothing acknowledged, since commit N has not synced.
    target.syncs[1]!.resolve(okReport(target.syncs[1]!.batches, 2));
    await turns();
    expect(messages).toEqual([]);
    expect(committed()).toBe(start);
    expect(second.map((r) => ring.state(r))).toEqual(Array(3).fill(STATE_VALID));

    // Sync N finishes: both commits are acknowledged, N first.
    Atomics.store(ring.words, CONTROL.writerStop, 1);
    target.syncs[0]!.resolve(okReport(target.syncs[0]!.batches, 1));
    await expect(running).resolves.toBe('stopped');
    expect(target.events).toEqual(['append 1', 'append 2', 'sync 2 resolved', 'sync 1 resolved']);
    expect(
      messages.map((m) => [m.type, (m as CommitMessage).committedCursor, (m as CommitMessage).batches]),
    ).toEqual([
      ['commit', firstEnd, 2],
      ['commit', secondEnd, 3],
    ]);
    expect(committed()).toBe(secondEnd);
    expect([...first, ...second].map((r) => ring.state(r))).toEqual(Array(5).fill(STATE_COMMITTED));
  });

  it('takes a cut between commits and answers it only once the commits staged before it are acknowledged', async () => {
    const { ring, target, messages, loop } = setup();
    publishAndCheck(ring, [1]);
    const running = loop.run();
    expect(target.events).toEqual(['append 1']);
    Atomics.add(ring.words, CONTROL.cutRequests, 1);
    ring.wakeWriter();
    await until(() => target.events.includes('cut'), 'the cut taken');
    // Commit 2 arrives after the cut: it is not in it, and the cut does not wait for it.
    publishAndCheck(ring, [2]);
    await until(() => target.syncs.length === 2, 'commit 2 handed to storage');
    expect(target.events).toEqual(['append 1', 'cut', 'append 2']);
    await turns();
    expect(messages).toEqual([]);
    target.syncs[0]!.resolve(okReport(target.syncs[0]!.batches, 1));
    await until(() => messages.length === 2, 'commit 1 and the cut answered');
    expect(messages.map((m) => m.type)).toEqual(['commit', 'cut']);
    expect((messages[1] as CutMessage).request).toBe(1);
    expect((messages[1] as CutMessage).cut?.generation).toBe(1);
    Atomics.store(ring.words, CONTROL.writerStop, 1);
    target.syncs[1]!.resolve(okReport(target.syncs[1]!.batches, 2));
    await expect(running).resolves.toBe('stopped');
  });

  it('a failed sync of commit N fails N and the commit staged after it, and the store', async () => {
    const { ring, target, messages, loop, committed } = setup();
    const start = committed();
    const first = publishAndCheck(ring, [1]);
    const running = loop.run();
    const second = publishAndCheck(ring, [2, 3]);
    await until(() => target.syncs.length === 2, 'commit N+1 handed to storage');
    expect(target.events).toEqual(['append 1', 'append 2']);

    target.syncs[0]!.reject(Object.assign(new Error('EIO: injected'), { code: 'EIO' }));
    await expect(running).resolves.toBe('failed');
    // Commit N+1's own sync succeeding afterwards changes nothing.
    target.syncs[1]!.resolve(okReport(target.syncs[1]!.batches, 2));
    await turns();
    expect(target.events).toEqual(['append 1', 'append 2', 'sync 1 failed', 'sync 2 resolved']);
    expect(messages).toEqual([{ type: 'failed', error: { code: 'STORE_FAILED', message: 'EIO: injected' } }]);
    expect(ring.lifecycle()).toBe(LIFECYCLE_FAILED);
    expect(Atomics.load(ring.words, CONTROL.failureCode)).toBe(errorCodeNumber('STORE_FAILED'));
    expect(committed()).toBe(start);
    // No record of either commit is acknowledged: their producers learn of the failure from the ring.
    expect([...first, ...second].map((r) => ring.state(r))).toEqual(Array(3).fill(STATE_VALID));
  });

  it("overlaps a target whose commits are always asynchronous (cluster) at durability 'write' too", async () => {
    const { ring, target, messages, loop } = setup('write', new AsyncOnlyTarget());
    publishAndCheck(ring, [1]);
    const running = loop.run();
    // Handed over with appendOverlapped (append() would throw) and acknowledged once it settles.
    expect(target.events).toEqual(['append 1']);
    publishAndCheck(ring, [2]);
    await until(() => target.syncs.length === 2, 'commit 2 handed over while commit 1 is open');
    expect(messages).toEqual([]);
    Atomics.store(ring.words, CONTROL.writerStop, 1);
    target.syncs[0]!.resolve(okReport(target.syncs[0]!.batches, 1));
    target.syncs[1]!.resolve(okReport(target.syncs[1]!.batches, 2));
    await expect(running).resolves.toBe('stopped');
    expect(messages.map((m) => m.type)).toEqual(['commit', 'commit']);
  });

  it('fails the store at its next turn when the target met a failure after answering a commit', async () => {
    const target = new AsyncOnlyTarget() as AsyncOnlyTarget & { failure?: unknown };
    const { ring, messages, loop } = setup('write', target);
    publishAndCheck(ring, [1]);
    const running = loop.run();
    expect(target.events).toEqual(['append 1']);
    // The target answers the commit and has failed meanwhile (a cluster's store that could not
    // apply a message its stream holds): the commit keeps its outcomes, then the store fails.
    target.failure = new RingStoreError('STORE_FAILED', 'this node could not apply a message');
    target.syncs[0]!.resolve(okReport(target.syncs[0]!.batches, 1));
    await expect(running).resolves.toBe('failed');
    expect(messages.map((m) => m.type)).toEqual(['commit', 'failed']);
    expect(ring.lifecycle()).toBe(LIFECYCLE_FAILED);
  });

  it('does upkeep only when nothing is ready to stage, while a sync is open too; a failed upkeep fails the store', async () => {
    const target = new UpkeepTarget();
    const { ring, messages, loop } = setup('fsync', target);
    publishAndCheck(ring, [1]);
    const running = loop.run();
    // Records ready at the start are staged first; the upkeep comes when there is nothing to stage.
    expect(target.events).toEqual(['append 1', 'upkeep']);
    publishAndCheck(ring, [2]);
    await until(() => target.syncs.length === 2, 'commit 2 handed to storage');
    await turns();
    // Two commits in flight: the loop does one piece of upkeep and waits for the oldest sync.
    expect(target.events).toEqual(['append 1', 'upkeep', 'append 2', 'upkeep']);
    target.syncs[0]!.resolve(okReport(target.syncs[0]!.batches, 1));
    await until(() => messages.length === 1, 'commit 1 acknowledged');
    await turns();
    expect(target.events).toEqual(['append 1', 'upkeep', 'append 2', 'upkeep', 'sync 1 resolved', 'upkeep']);
    expect(target.left).toBe(0);

    // An upkeep that throws (a failed write) fails the store like a failed commit.
    target.fails = true;
    publishAndCheck(ring, [3]);
    await expect(running).resolves.toBe('failed');
    expect(target.events.at(-1)).toBe('append 3');
    expect(messages.map((m) => m.type)).toEqual(['commit', 'failed']);
    expect((messages[1] as FailedMessage).error.code).toBe('STORE_FAILED');
    expect(ring.lifecycle()).toBe(LIFECYCLE_FAILED);
  });
});
