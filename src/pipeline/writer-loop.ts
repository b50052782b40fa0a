import { RingStoreError, type WireError } from '../errors.js';
import { NameCache } from '../model/name-cache.js';
import type { LogCut } from '../storage/log-cut.js';
import type { AppendBatch, AppendReport, CacheStats, CommitDelta } from '../storage/types.js';
import type { Durability } from '../types.js';
import { decodeAppendBatch } from './batch-codec.js';
import { errorCodeNumber, writeOutcome } from './record-results.js';
import type { Ring } from './ring.js';
import {
  LIFECYCLE_FAILED,
  STATE_CLAIMED,
  STATE_COMMITTED,
  STATE_FAILED,
  STATE_FREE,
  STATE_PADDING,
  STATE_REJECTED,
  STATE_VALID,
} from './ring-layout.js';
import { asyncWait, type WaitStrategy } from './wait-strategy.js';

/**
 * The writer thread's logic, kept apart from the thread entry point so that it runs in-process in
 * tests. One commit cycle:
 *
 *   scan from committedCursor over VALID | REJECTED | PADDING records, in ring order, stopping at the
 *   first record that is not ready (or after maxBatchesPerCycle)
 *     └► decode VALID records as AppendBatch (event data and metadata are views into the ring)
 *     └► storage.append(batches, durability): ONE call per cycle = one group commit, one fsync
 *     └► write each outcome into its record, store COMMITTED | FAILED (REJECTED → FAILED)
 *     └► store committedCursor; notify it if producer threads announced a wait (completionWaiters)
 *     └► publish ONE CommitMessage with the CommitDelta (the main thread applies it to its reader
 *        before it resolves puts: read-your-writes)
 *     └► reclaim released records behind committedCursor
 *
 * With nothing to stage, the loop first lets the target do one bounded piece of upkeep that a later
 * commit would otherwise do in its path (writeZerosAhead), then gives its event loop a turn and
 * looks again.
 *
 * Between cycles the thread waits on writerWake through its idle WaitStrategy ('blocking' or
 * 'spin-then-block', bounded), after announcing the wait (Ring.beginWriterWait) and re-checking for
 * work, so a waker never notifies in vain and never needs to when the writer is busy. While commits
 * sync it waits with 'async', since their completions arrive on its event loop.
 */
export interface AppendTarget {
  append(batches: readonly AppendBatch[], durability: Durability): AppendReport;
  /** A commit whose sync runs off this thread (StorageWriter.appendOverlapped); settles in order. */
  appendOverlapped?(batches: readonly AppendBatch[]): Promise<AppendReport>;
  /** The log's ends after the last commit written (StorageWriter.cut), for a backup. */
  cut?(): LogCut;
  /**
   * True for a target whose commits are always asynchronous, whatever the durability (a cluster's,
   * src/pipeline/cluster/cluster-target.ts: each waits for JetStream's acknowledgement): the loop
   * then always uses appendOverlapped.
   */
  readonly commitsAsync?: boolean;
  /**
   * A failure the target met after it answered a commit (a cluster's: a message its domain stream
   * holds that this node's store could not apply): the loop fails the store at its next turn.
   */
  readonly failure?: unknown;
  /**
   * Upkeep that a later commit would otherwise do in its path (StorageWriter.writeZerosAhead: one
   * bounded chunk of zeros ahead of a file), called when the loop has nothing to stage; returns
   * whether it did any.
   */
  writeZerosAhead?(): boolean;
}

/** Commits that may sync at once while the loop stages the next one. */
const COMMITS_IN_FLIGHT = 2;

/** A commit staged by the overlapped loop, waiting for its sync. */
interface StagedCommit {
  /** Ring records it gives a final state (rejected ones included), in ring order. */
  records: number[];
  /** The ring cursor just past them. */
  cursor: number;
  report: AppendReport | undefined;
  failure: unknown;
  /** True once its sync has settled (at once when it holds only rejected records). */
  done: boolean;
  /** Resolves (never rejects) when done. */
  settled: Promise<void>;
}

export interface CommitMessage {
  type: 'commit';
  /** Every record before this ring cursor has its final state. */
  committedCursor: number;
  /** Records given a final state by this cycle (batches, rejected ones included). */
  batches: number;
  fsyncs: number;
  /** Duration in seconds of each of those fsyncs. */
  syncSeconds: number[];
  appendedEvents: number;
  appendedBytes: number;
  generations: number;
  /** Undefined when the cycle appended nothing (only rejected batches). */
  delta: CommitDelta | undefined;
  /** The writer's caches after the cycle (undefined when it made no storage append). */
  caches: CacheStats[] | undefined;
}

/**
 * The answer to a cut request (CONTROL.cutRequests): the log's ends after the last commit written
 * when the writer saw the request, sent once every commit up to it has its final state (synced
 * with 'fsync'), or why none could be taken.
 */
export interface CutMessage {
  type: 'cut';
  /** The value of cutRequests it answers: every request up to it. */
  request: number;
  cut?: LogCut;
  error?: WireError;
}

export interface FailedMessage {
  type: 'failed';
  error: WireError;
}

export interface WriterLoopOptions {
  durability: Durability;
  /** Most batches handed to one append call. */
  maxBatchesPerCycle: number;
  /** Upper bound of one idle wait; the loop re-checks everything after it. */
  idleWaitMs: number;
  /** How the thread waits for work when it has none ('blocking' unless a core is to spare). */
  idleWait: WaitStrategy;
  /**
   * How long the record at the head of the ring may stay claimed but unpublished before the store
   * fails (a producer thread died between claim and publish): see ClaimWatch.
   */
  claimTimeoutMs: number;
  publish(message: CommitMessage | FailedMessage | CutMessage): void;
}

export type WriterLoopEnd = 'stopped' | 'failed';

export class WriterLoop {
  readonly #ring: Ring;
  readonly #storage: AppendTarget;
  readonly #options: WriterLoopOptions;
  readonly #names = new NameCache();
  readonly #records: number[] = [];
  readonly #batches: AppendBatch[] = [];
  readonly #claimWatch: ClaimWatch;
  /** Where the next scan starts (past every staged record). */
  #cursor: number;
  /** Where the last scan ended. */
  #scanned = 0;
  /** Every record before it has its final state (the ring's committedCursor). */
  #committed: number;
  readonly #staged: StagedCommit[] = [];
  /** cutRequests answered (or being answered) so far. */
  #cutsSeen = 0;
  /** A cut taken and waiting for the commits staged before it to finish. */
  #pendingCut: { message: CutMessage; after: StagedCommit | undefined } | undefined;

  constructor(ring: Ring, storage: AppendTarget, options: WriterLoopOptions) {
    this.#ring = ring;
    this.#storage = storage;
    this.#options = options;
    this.#cursor = ring.committedCursor();
    this.#committed = this.#cursor;
    this.#cutsSeen = ring.cutRequests();
    this.#claimWatch = new ClaimWatch(options.claimTimeoutMs);
  }

  /** Runs one commit cycle; returns how many records it passed (0: nothing was ready). */
  cycle(): number {
    const passed = this.#scan();
    if (passed === 0) return 0;
    const batches = this.#batches;
    const report = batches.length > 0 ? this.#storage.append(batches, this.#options.durability) : undefined;
    batches.length = 0;
    this.#finish(this.#records, this.#scanned, report);
    return passed;
  }

  /** Collects the ready records from the scan cursor into #records / #batches; returns how many. */
  #scan(): number {
    const ring = this.#ring;
    const records = this.#records;
    const batches = this.#batches;
    records.length = 0;
    batches.length = 0;
    let cursor = this.#cursor;
    let passed = 0;
    // Never read at or past claimCursor: in a full ring the bytes there are the oldest record,
    // released but not yet reclaimed (possibly a PADDING record), not a new one.
    const claim = ring.claimCursor();
    while (((claim - cursor) | 0) > 0 && batches.length < this.#options.maxBatchesPerCycle) {
      const record = ring.recordAt(cursor);
      const state = ring.state(record);
      if (state === STATE_VALID) {
        batches.push(decodeAppendBatch(ring.bytes, ring.view, record, this.#names));
        records.push(record);
      } else if (state === STATE_REJECTED) {
        records.push(record);
      } else if (state !== STATE_PADDING) {
        break;
      }
      cursor = (cursor + ring.recordBytes(record)) | 0;
      passed++;
    }
    this.#scanned = cursor;
    this.#cursor = cursor;
    return passed;
  }

  /** Gives the records of one commit their final state, publishes it and reclaims the ring behind it. */
  #finish(records: readonly number[], cursor: number, report: AppendReport | undefined): void {
    const ring = this.#ring;
    let outcome = 0;
    for (const record of records) {
      if (ring.state(record) === STATE_REJECTED) {
        ring.setState(record, STATE_FAILED);
        continue;
      }
      const result = report!.outcomes[outcome++]!;
      writeOutcome(ring.view, record, result);
      ring.setState(record, result.ok ? STATE_COMMITTED : STATE_FAILED);
    }
    this.#committed = cursor;
    ring.commitUpTo(cursor);
    this.#options.publish({
      type: 'commit',
      committedCursor: cursor,
      batches: records.length,
      fsyncs: report?.fsyncs ?? 0,
      syncSeconds: report?.syncSeconds ?? [],
      appendedEvents: report?.appendedEvents ?? 0,
      appendedBytes: report?.appendedBytes ?? 0,
      generations: report?.generations ?? 0,
      delta: report?.delta,
      caches: report?.caches,
    });
    ring.reclaim(cursor);
  }

  /**
   * The overlapped form of a cycle: stages a commit (scan, then StorageWriter.appendOverlapped:
   * admit, pack, encode, write, and the sync started on the thread pool) and returns at once; the
   * records get their final state when its sync settles (#settleStaged), in commit order.
   *
   *   stage N ── sync N ·········· finish N
   *              stage N+1 ── sync N+1 ·········· finish N+1
   */
  #stage(): number {
    const passed = this.#scan();
    if (passed === 0) return 0;
    const commit: StagedCommit = {
      records: [...this.#records],
      cursor: this.#scanned,
      report: undefined,
      failure: undefined,
      done: this.#batches.length === 0,
      settled: Promise.resolve(),
    };
    if (this.#batches.length > 0) {
      commit.settled = this.#storage.appendOverlapped!(this.#batches).then(
        (report) => {
          commit.report = report;
          commit.done = true;
        },
        (error: unknown) => {
          commit.failure = error ?? new Error('sync failed');
          commit.done = true;
        },
      );
    }
    this.#batches.length = 0;
    this.#staged.push(commit);
    return passed;
  }

  /** Finishes the staged commits whose syncs have settled, oldest first; throws a sync failure. */
  #settleStaged(): void {
    while (this.#staged.length > 0 && this.#staged[0]!.done) {
      const commit = this.#staged.shift()!;
      if (commit.failure !== undefined) throw commit.failure;
      this.#finish(commit.records, commit.cursor, commit.report);
    }
  }

  /**
   * Runs cycles until the main thread asks to stop and everything claimed is committed ('stopped'),
   * or until the store fails ('failed': storage threw, e.g. an fsync error, or another party failed
   * the ring). A storage failure is never retried.
   */
  async run(): Promise<WriterLoopEnd> {
    const ring = this.#ring;
    // With 'fsync' and a target that can, commits overlap: the next is staged while one syncs.
    const overlap =
      (this.#options.durability === 'fsync' || this.#storage.commitsAsync === true) &&
      this.#storage.appendOverlapped !== undefined;
    for (;;) {
      if (ring.lifecycle() === LIFECYCLE_FAILED) return 'failed';
      let passed: number;
      let upkept = false;
      try {
        this.#takeCut();
        if (overlap) {
          this.#settleStaged();
          this.#answerCut();
          // After the commits it answered: their records keep the outcomes the target gave them.
          if (this.#storage.failure !== undefined) throw this.#storage.failure;
          passed = this.#staged.length < COMMITS_IN_FLIGHT ? this.#stage() : 0;
        } else {
          this.#answerCut();
          passed = this.cycle();
        }
        if (passed === 0) upkept = this.#storage.writeZerosAhead?.() ?? false;
      } catch (error) {
        const wire = toWireError(error);
        ring.fail(errorCodeNumber('STORE_FAILED'));
        this.#options.publish({ type: 'failed', error: wire });
        return 'failed';
      }
      if (passed > 0) continue;
      if (this.#staged.length > 0) {
        await this.#awaitStaged();
        continue;
      }
      if (upkept) {
        // Its event loop gets a turn between pieces of upkeep (in cluster mode NATS answers there).
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      const stalled = this.#claimWatch.observe(ring, this.#cursor, performance.now());
      if (stalled) {
        ring.fail(errorCodeNumber('STORE_FAILED'));
        this.#options.publish({ type: 'failed', error: { code: 'STORE_FAILED', message: stalled } });
        return 'failed';
      }
      ring.reclaim(this.#committed);
      if (ring.stopRequested() && ring.claimCursor() === this.#cursor) return 'stopped';
      const seen = ring.beginWriterWait();
      if (!this.#hasWork()) {
        const outcome = ring.waitForWriterWake(seen, this.#options.idleWaitMs, this.#options.idleWait);
        if (typeof outcome !== 'string') await outcome;
      }
      ring.endWriterWait();
    }
  }

  /**
   * Waits for the oldest staged commit's sync; while fewer than COMMITS_IN_FLIGHT are staged, also
   * for new records to stage beside it (waitAsync: the thread must keep its event loop, where the
   * syncs report back).
   */
  async #awaitStaged(): Promise<void> {
    const oldest = this.#staged[0]!.settled;
    if (this.#staged.length >= COMMITS_IN_FLIGHT) {
      await oldest;
      return;
    }
    const ring = this.#ring;
    const seen = ring.beginWriterWait();
    if (!this.#hasWork()) {
      const wake = ring.waitForWriterWake(seen, this.#options.idleWaitMs, asyncWait);
      if (typeof wake !== 'string') {
        await Promise.race([oldest, wake]);
        // When the sync won, this wait is still queued on writerWake: release it.
        ring.releaseWriterWaits();
      }
    }
    ring.endWriterWait();
  }

  /**
   * Takes the cut a new request asks for (between two commits: nothing is half written), to be
   * answered once the commits staged so far have finished (#answerCut). Requests that arrive while
   * one is pending are answered by the next cut.
   */
  #takeCut(): void {
    if (this.#pendingCut !== undefined) return;
    const asked = this.#ring.cutRequests();
    if (asked === this.#cutsSeen) return;
    this.#cutsSeen = asked;
    const message: CutMessage = { type: 'cut', request: asked };
    try {
      if (!this.#storage.cut) throw new RingStoreError('INTERNAL', 'this storage cannot take a cut');
      message.cut = this.#storage.cut();
    } catch (error) {
      message.error = toWireError(error);
    }
    this.#pendingCut = { message, after: this.#staged[this.#staged.length - 1] };
  }

  /** Sends the pending cut once every commit staged before it has been finished. */
  #answerCut(): void {
    const pending = this.#pendingCut;
    if (pending === undefined) return;
    if (pending.after !== undefined && this.#staged.includes(pending.after)) return;
    this.#pendingCut = undefined;
    this.#options.publish(pending.message);
  }

  /** The re-check after announcing a wait: anything that a waker might have missed telling us. */
  #hasWork(): boolean {
    const ring = this.#ring;
    const claim = ring.claimCursor();
    const state = ((claim - this.#cursor) | 0) > 0 ? ring.state(ring.recordAt(this.#cursor)) : STATE_FREE;
    if (state === STATE_VALID || state === STATE_REJECTED || state === STATE_PADDING) return true;
    if (ring.stopRequested()) return true;
    if (ring.cutRequests() !== this.#cutsSeen) return true;
    if (ring.lifecycle() === LIFECYCLE_FAILED) return true;
    return ring.spaceWanted() && ring.reclaim(this.#committed);
  }
}

/**
 * Watches the record at the head of the ring (the writer's cursor) while the writer is idle. A
 * producer publishes a record it claimed within microseconds: claim, encode and publish are one
 * synchronous step. A record that stays CLAIMED (or whose claim never got as far as its header:
 * FREE below claimCursor) means its producer's thread ended between claim and publish; every later
 * record would wait behind it forever. After `timeoutMs`, and once more one second later (so that a
 * whole process resumed from SIGSTOP, or a debugger pause, gives the producer its chance to finish),
 * the store fails with a message that says so rather than hang until every put times out.
 *
 * It does not cover a producer thread that ends after publishing but before it read its results:
 * those records stay COMMITTED/FAILED, never RELEASED, and the ring fills behind them (puts then
 * fail with BACKPRESSURE). That cannot be told apart from a live producer thread that is busy for a
 * long time without returning to its event loop, so the store does not fail for it.
 */
export class ClaimWatch {
  readonly #timeoutMs: number;
  #cursor = 0;
  #since = -1;
  #confirmAt = -1;

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  /** Returns why the store must fail, or undefined. `now`: a monotonic clock in ms (performance.now). */
  observe(ring: Ring, cursor: number, now: number): string | undefined {
    const claim = ring.claimCursor();
    const state = ((claim - cursor) | 0) > 0 ? ring.state(ring.recordAt(cursor)) : -1;
    if (state !== STATE_CLAIMED && state !== STATE_FREE) {
      this.#since = -1;
      return undefined;
    }
    if (this.#since < 0 || this.#cursor !== cursor) {
      this.#cursor = cursor;
      this.#since = now;
      this.#confirmAt = -1;
      return undefined;
    }
    if (now - this.#since < this.#timeoutMs) return undefined;
    if (this.#confirmAt < 0) {
      this.#confirmAt = now + CLAIM_CONFIRM_MS;
      return undefined;
    }
    if (now < this.#confirmAt) return undefined;
    return (
      `a producer claimed ring space and did not publish it within ${this.#timeoutMs} ms ` +
      '(its thread ended or stopped in the middle of a put); every later put would wait behind it, ' +
      'so the store stops instead'
    );
  }
}

const CLAIM_CONFIRM_MS = 1_000;

export function toWireError(error: unknown): WireError {
  if (error instanceof RingStoreError) return error.toWire();
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'STORE_FAILED', message };
}
