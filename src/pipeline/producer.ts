import { RingStoreError } from '../errors.js';
import { byteLengthOf } from '../model/byte-length.js';
import type { AggregateIdInput } from '../model/event-store.js';
import { PutValidator } from '../model/put-validator.js';
import type { EventInput, ExpectedVersion, PutOptions, PutResult } from '../types.js';
import { BatchEncoder, type EncodableBatch } from './batch-codec.js';
import { Handoff } from './handoff.js';
import { errorCodeFromNumber, readRecordError, readRecordResult } from './record-results.js';
import { Ring } from './ring.js';
import {
  LIFECYCLE_CLOSED,
  LIFECYCLE_FAILED,
  LIFECYCLE_OPEN,
  STATE_COMMITTED,
  STATE_FAILED,
  STATE_PUBLISHED,
  STATE_VALID,
} from './ring-layout.js';
import { asyncWait } from './wait-strategy.js';

/**
 * What `store.producer()` returns: plain data (the ring's SharedArrayBuffer and the settings a
 * producer needs) that can be posted to a worker thread, where `Producer.fromHandle(handle)` turns
 * it into a Producer that puts into the same ring.
 */
export interface ProducerHandle {
  readonly kind: 'ringstore.producer';
  readonly sab: SharedArrayBuffer;
  readonly crc: 'pool' | 'inline';
  readonly backpressureTimeoutMs: number;
  readonly maxWaitingPuts: number;
  readonly handoffBytes: number;
}

/** How a producer is wired into its thread. */
export interface ProducerWiring {
  /**
   * Called after every publish with the record's ring bytes: hand the record on (kick the CRC
   * dispatcher or wake the writer), usually through a Handoff.
   */
  afterPublish(recordBytes: number): void;
  /**
   * 'notify': the producer itself waits on committedCursor with Atomics.waitAsync (worker threads);
   * 'external': its owner calls completeReady() after each commit message (the store's main thread,
   * which must first apply the commit to its reader).
   */
  completion: 'notify' | 'external';
}

interface PendingPut {
  record: number;
  /** Ring cursor of the record. */
  cursor: number;
  expectedVersion: ExpectedVersion;
  resolve(result: PutResult): void;
  reject(error: RingStoreError): void;
}

interface WaitingPut {
  batch: EncodableBatch;
  deadline: number;
  resolve(result: PutResult): void;
  reject(error: RingStoreError): void;
}

/** How long one wait for ring space or commits lasts before everything is checked again. */
const RECHECK_MS = 50;

/**
 * Puts batches into the ring from one thread. Each put is validated at the boundary, then claims
 * ring space, encodes the batch in place and publishes it; its promise settles when the writer has
 * given the record a final state, and only then is the ring space released.
 *
 * Per producer, batches enter the ring in call order: while one waits for room (backpressure),
 * later puts queue behind it. The queue is bounded (maxWaitingPuts) and so is every wait
 * (backpressureTimeoutMs): past either, put rejects with BACKPRESSURE, so memory stays bounded.
 */
export class Producer {
  readonly #ring: Ring;
  readonly #handle: ProducerHandle;
  readonly #wiring: ProducerWiring;
  readonly #inline: boolean;
  readonly #encoder = new BatchEncoder();
  readonly #validator = new PutValidator();
  readonly #pending: PendingPut[] = [];
  #pendingHead = 0;
  readonly #waiting: WaitingPut[] = [];
  #pumping = false;
  #completionArmed = false;
  #backpressureRejections = 0;
  /** A ref'd timer while puts are outstanding: Atomics.waitAsync alone keeps no thread alive. */
  #keepAlive: ReturnType<typeof setInterval> | undefined;

  constructor(handle: ProducerHandle, wiring: ProducerWiring) {
    if (handle?.kind !== 'ringstore.producer' || !(handle.sab instanceof SharedArrayBuffer)) {
      throw new RingStoreError('INVALID_OPTION', 'not a producer handle: use store.producer()', {
        option: 'handle',
      });
    }
    this.#handle = handle;
    this.#ring = Ring.attach(handle.sab);
    this.#wiring = wiring;
    this.#inline = handle.crc === 'inline';
  }

  /** A producer for a worker thread, from the handle `store.producer()` made. */
  static fromHandle(handle: ProducerHandle): Producer {
    const ring = Ring.attach(handle.sab);
    const handoff = new Handoff(
      handle.crc === 'inline' ? () => ring.wakeWriter() : () => ring.wakeDispatcher(),
      handle.handoffBytes,
    );
    return new Producer(handle, {
      afterPublish: (recordBytes) => handoff.published(recordBytes),
      completion: 'notify',
    });
  }

  /** Puts this producer refused with BACKPRESSURE. */
  get backpressureRejections(): number {
    return this.#backpressureRejections;
  }

  /** Puts not settled yet (in the ring or waiting for room). */
  get outstanding(): number {
    return this.#pending.length - this.#pendingHead + this.#waiting.length;
  }

  put(
    domain: string,
    aggregateType: string,
    id: AggregateIdInput,
    events: readonly EventInput[],
    options?: PutOptions,
  ): Promise<PutResult> {
    try {
      const refusal = this.#refusal();
      if (refusal) throw refusal;
      // Checked in place: encoded into the ring before put returns, or copied (events and bytes)
      // when it must wait.
      const batch: EncodableBatch = this.#validator.putInPlace(domain, aggregateType, id, events, options);
      const size = this.#encoder.measure(batch, this.#inline);
      if (size > this.#ring.maxRecordBytes) {
        throw new RingStoreError(
          'BATCH_TOO_LARGE',
          `the batch needs ${size} bytes of ring space; this ring takes at most ${this.#ring.maxRecordBytes} (ringBytes / 2)`,
        );
      }
      return new Promise<PutResult>((resolve, reject) => {
        if (this.#waiting.length === 0) {
          const record = this.#ring.tryClaim(size);
          if (record >= 0) {
            this.#publish(record, batch, resolve, reject);
            return;
          }
        }
        if (this.#waiting.length >= this.#handle.maxWaitingPuts) {
          this.#backpressureRejections++;
          reject(
            new RingStoreError('BACKPRESSURE', `${this.#waiting.length} puts already wait for ring space`),
          );
          return;
        }
        const deadline = Date.now() + this.#handle.backpressureTimeoutMs;
        this.#waiting.push({ batch: ownEvents(batch), deadline, resolve, reject });
        this.#holdAlive();
        void this.#pumpWaiting();
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Settles every put at the front of this producer's queue whose record has its final state and
   * releases its ring space. Called on each committedCursor change ('notify'), or by the owner after
   * each commit message with `limitCursor`, the message's committedCursor: records past it may be
   * committed in the ring already, but their commit is not yet applied to the owner's reader, so
   * they must wait for their own message (read-your-writes).
   */
  completeReady(limitCursor?: number): void {
    const ring = this.#ring;
    const pending = this.#pending;
    let released = false;
    while (this.#pendingHead < pending.length) {
      const put = pending[this.#pendingHead]!;
      if (limitCursor !== undefined && ((limitCursor - put.cursor) | 0) <= 0) break;
      const state = ring.state(put.record);
      if (state === STATE_COMMITTED) {
        const result = readRecordResult(ring.view, put.record);
        ring.markReleased(put.record);
        put.resolve(result);
      } else if (state === STATE_FAILED) {
        const error =
          readRecordError(ring.view, put.record, put.expectedVersion) ?? new RingStoreError('INTERNAL');
        ring.markReleased(put.record);
        put.reject(error);
      } else {
        break;
      }
      pending[this.#pendingHead++] = undefined as unknown as PendingPut;
      released = true;
    }
    if (released) ring.afterReleases();
    if (this.#pendingHead === pending.length) {
      pending.length = 0;
      this.#pendingHead = 0;
    } else if (this.#pendingHead > 1024 && this.#pendingHead * 2 > pending.length) {
      pending.splice(0, this.#pendingHead);
      this.#pendingHead = 0;
    }
    const lifecycle = ring.lifecycle();
    if (lifecycle === LIFECYCLE_FAILED || lifecycle === LIFECYCLE_CLOSED)
      this.failOutstanding(this.#refusal()!);
    this.#releaseAliveIfIdle();
  }

  /** Rejects every put that has no final result (the store failed or was closed under it). */
  failOutstanding(error: RingStoreError): void {
    const pending = this.#pending.splice(this.#pendingHead);
    this.#pending.length = 0;
    this.#pendingHead = 0;
    const waiting = this.#waiting.splice(0);
    for (const put of pending) put.reject(error);
    for (const put of waiting) put.reject(error);
    this.#releaseAliveIfIdle();
  }

  #refusal(): RingStoreError | undefined {
    const lifecycle = this.#ring.lifecycle();
    if (lifecycle === LIFECYCLE_OPEN) return undefined;
    if (lifecycle === LIFECYCLE_FAILED) {
      const code = errorCodeFromNumber(this.#ring.failureCode());
      return new RingStoreError(code === 'INTERNAL' ? 'STORE_FAILED' : code);
    }
    return new RingStoreError('STORE_CLOSED');
  }

  #publish(
    record: number,
    batch: EncodableBatch,
    resolve: (result: PutResult) => void,
    reject: (error: RingStoreError) => void,
  ): void {
    const ring = this.#ring;
    this.#encoder.write(ring.bytes, ring.view, record, batch, this.#inline);
    ring.setState(record, this.#inline ? STATE_VALID : STATE_PUBLISHED);
    this.#pending.push({
      record,
      cursor: ring.lastClaimCursor,
      expectedVersion: batch.expectedVersion,
      resolve,
      reject,
    });
    this.#holdAlive();
    this.#wiring.afterPublish(ring.recordBytes(record));
    if (this.#wiring.completion === 'notify') this.#armCompletion();
  }

  /** Claims room for queued puts in order, waiting (asynchronously, bounded) while the ring is full. */
  async #pumpWaiting(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    const ring = this.#ring;
    try {
      while (this.#waiting.length > 0) {
        // Puts made before close() began still go in while the store drains; only a failed or
        // closed ring turns them away.
        const lifecycle = ring.lifecycle();
        const refusal =
          lifecycle === LIFECYCLE_FAILED || lifecycle === LIFECYCLE_CLOSED ? this.#refusal() : undefined;
        if (refusal) {
          this.failOutstanding(refusal);
          return;
        }
        const front = this.#waiting[0]!;
        const size = this.#encoder.measure(front.batch, this.#inline);
        let record = ring.tryClaim(size);
        if (record < 0) {
          const remaining = front.deadline - Date.now();
          if (remaining <= 0) {
            this.#waiting.shift();
            this.#backpressureRejections++;
            front.reject(
              new RingStoreError(
                'BACKPRESSURE',
                `no ring space within backpressureTimeoutMs (${this.#handle.backpressureTimeoutMs} ms)`,
              ),
            );
            continue;
          }
          const seen = ring.beginSpaceWait();
          record = ring.tryClaim(size);
          if (record < 0) await ring.waitForSpace(seen, Math.min(remaining, RECHECK_MS), asyncWait);
          ring.endSpaceWait();
          if (record < 0) continue;
        }
        this.#waiting.shift();
        this.#publish(record, front.batch, front.resolve, front.reject);
      }
    } finally {
      this.#pumping = false;
      this.#releaseAliveIfIdle();
    }
  }

  #armCompletion(): void {
    if (this.#completionArmed) return;
    this.#completionArmed = true;
    this.#awaitCommits();
  }

  /** Waits (asynchronously, bounded) for commits on committedCursor: see Ring.waitForCommits. */
  readonly #awaitCommits = (): void => {
    const ring = this.#ring;
    for (;;) {
      const seen = ring.committedCursor();
      this.completeReady();
      if (this.#pendingHead === this.#pending.length) {
        this.#completionArmed = false;
        return;
      }
      const outcome = ring.waitForCommits(seen, RECHECK_MS * 10, asyncWait);
      if (typeof outcome !== 'string') {
        outcome.then(this.#awaitCommits);
        return;
      }
    }
  };

  #holdAlive(): void {
    this.#keepAlive ??= setInterval(() => this.#recheck(), RECHECK_MS * 10);
  }

  #releaseAliveIfIdle(): void {
    if (this.#keepAlive !== undefined && this.outstanding === 0) {
      clearInterval(this.#keepAlive);
      this.#keepAlive = undefined;
    }
  }

  /** Safety net of the keep-alive timer: notices a failed or closed store even without a wake-up. */
  #recheck(): void {
    if (this.#wiring.completion === 'external') return;
    const lifecycle = this.#ring.lifecycle();
    if (lifecycle === LIFECYCLE_FAILED || lifecycle === LIFECYCLE_CLOSED) this.completeReady();
  }
}

/**
 * A batch whose events and bytes belong to the producer: a put that waits for ring space is
 * encoded later, after the caller may have changed its own event objects, its array or the bytes
 * of its data and metadata (with crc 'inline' their CRCs were already computed from the bytes as
 * they were at the call). Only a put that waits pays for the copies.
 */
function ownEvents(batch: EncodableBatch): EncodableBatch {
  const events = batch.events.map(({ type, data, metadata, crc }) => {
    const owned = { type, data: ownBytes(data), metadata: ownBytes(metadata) };
    return crc === undefined ? owned : { ...owned, crc };
  });
  return { ...batch, events };
}

function ownBytes(bytes: Uint8Array | undefined): Uint8Array | undefined {
  return bytes === undefined || byteLengthOf(bytes) === 0 ? bytes : new Uint8Array(bytes);
}
