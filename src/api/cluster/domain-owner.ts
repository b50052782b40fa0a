import { randomUUID } from 'node:crypto';
import type { JetStreamClient } from '@nats-io/jetstream';
import { fromWire, RingStoreError, versionConflict } from '../../errors.js';
import { expectedVersionMatches } from '../../model/events.js';
import { eventListOf } from '../../storage/event-list.js';
import type { StorageEngine } from '../../storage/storage-engine.js';
import type { AppendBatch } from '../../storage/types.js';
import type { PutResult } from '../../types.js';
import type { DomainReplica } from './domain-replica.js';
import { encodeGenerationMessage, type GenerationMessage } from './generation-message.js';
import type { LeaseBook } from './lease-book.js';
import { describe, isWrongLastSequence } from './nats-errors.js';
import type { NatsNames } from './nats-names.js';

export interface QueuedPut {
  batch: AppendBatch;
  resolve: (result: PutResult) => void;
  reject: (err: unknown) => void;
}

export interface OwnerOptions {
  node: string;
  /** Most bytes of one message (the server's max_payload less room for the header). */
  maxMessageBytes: number;
  /** How long an unanswered publish is retried (same bytes, same message id) before giving up. */
  publishTimeoutMs: number;
  /** Called once when this owner stops (lease lost, fenced, closed). */
  onStepDown: (domain: string, reason: string) => void;
  /** Counts a publish that JetStream refused on the expected last sequence. */
  onFenced: () => void;
  /** The owner's clock: each message's timestamp (ms). */
  clock: () => number;
}

const HEADER_ALLOWANCE = 1024;
const PER_BATCH_ALLOWANCE = 256;

/**
 * The writing side of one domain on the node that holds its lease. Puts queue here; one message is
 * in flight at a time and everything queued meanwhile goes into the next one (group commit).
 *
 * Before each message the owner decides every queued put against its store, which then holds the
 * whole stream (it applies its own messages before deciding the next):
 *
 *   idempotency  a key seen before on the instance (or earlier in this message) replays / waits
 *   version      the expected version must hold against the instance's version, counting batches
 *                earlier in this message; the batch then names that exact version, so that any
 *                replica applying it twice refuses the second copy
 *   size         a batch that cannot fit in one message is refused (MESSAGE_TOO_LARGE)
 *
 * The message is published with `Nats-Expected-Last-Sequence` = the sequence this owner last wrote
 * or caught up to (the fence): if anyone else extended the stream since, JetStream refuses it and
 * the owner steps down (or, when the lease is still its own, catches up and decides again). A put
 * is answered after JetStream's acknowledgement (a quorum of replicas has it) and this node's apply.
 */
export class DomainOwner {
  readonly domain: string;
  readonly #engine: StorageEngine;
  readonly #replica: DomainReplica;
  readonly #js: JetStreamClient;
  readonly #leases: LeaseBook;
  readonly #names: NatsNames;
  readonly #options: OwnerOptions;
  #queue: QueuedPut[] = [];
  #busy = false;
  #active = true;
  /** The stream sequence the next message must follow. */
  #last = 0;
  /** Messages and batches this owner published (metrics). */
  published = 0;

  private constructor(
    domain: string,
    engine: StorageEngine,
    replica: DomainReplica,
    js: JetStreamClient,
    leases: LeaseBook,
    names: NatsNames,
    options: OwnerOptions,
  ) {
    this.#names = names;
    this.domain = domain;
    this.#engine = engine;
    this.#replica = replica;
    this.#js = js;
    this.#leases = leases;
    this.#options = options;
  }

  /** Becomes owner (the lease is held): catches up to the stream's last sequence first. */
  static async start(
    domain: string,
    engine: StorageEngine,
    replica: DomainReplica,
    js: JetStreamClient,
    leases: LeaseBook,
    names: NatsNames,
    options: OwnerOptions,
  ): Promise<DomainOwner> {
    const owner = new DomainOwner(domain, engine, replica, js, leases, names, options);
    owner.#last = await replica.catchUp(options.publishTimeoutMs);
    return owner;
  }

  get active(): boolean {
    return this.#active;
  }

  get queued(): number {
    return this.#queue.length;
  }

  submit(put: QueuedPut): void {
    if (!this.#active) {
      put.reject(this.#notOwner('this node no longer owns the domain'));
      return;
    }
    this.#queue.push(put);
    this.#pump();
  }

  /** Stops writing: queued puts are refused with NOT_OWNER (never published, safe to retry). */
  stepDown(reason: string): void {
    if (!this.#active) return;
    this.#active = false;
    const queued = this.#queue;
    this.#queue = [];
    for (const put of queued) put.reject(this.#notOwner(reason));
    this.#options.onStepDown(this.domain, reason);
  }

  #notOwner(reason: string): RingStoreError {
    return new RingStoreError('NOT_OWNER', `domain ${this.domain}: ${reason}`, { domain: this.domain });
  }

  #pump(): void {
    if (this.#busy || !this.#active || this.#queue.length === 0) return;
    this.#busy = true;
    void this.#commitNext().finally(() => {
      this.#busy = false;
      this.#pump();
    });
  }

  async #commitNext(): Promise<void> {
    if (!this.#leases.holds(this.domain) && !(await this.#leases.renew(this.domain))) {
      this.stepDown('the lease expired before the next message');
      return;
    }
    const taken = this.#decide();
    if (taken.length === 0) return;
    const now = Math.floor(this.#options.clock());
    const timestamp = Math.max(
      Number.isSafeInteger(now) ? now : 0,
      this.#engine.tip(this.domain).lastTimestamp,
    );
    const message: GenerationMessage = {
      domain: this.domain,
      node: this.#options.node,
      id: randomUUID(),
      timestamp,
      batches: taken.map((t) => t.batch),
    };
    const bytes = encodeGenerationMessage(message);
    const seq = this.#last + 1;
    const applied = this.#replica.expect(seq, message.id);
    applied.catch(() => undefined);
    const outcome = await this.#publish(bytes, message.id);
    if (outcome === 'stored') {
      this.published++;
      this.#last = seq;
      // Applied here at once; the consumer will skip it.
      this.#replica.apply(seq, message).catch(() => undefined);
    } else {
      if (outcome === 'fenced') this.#options.onFenced();
      // Not certainly stored: learn from the stream whether message `seq` is ours.
      let stored: boolean;
      try {
        stored = await this.#catchUp(seq);
      } catch (err) {
        stored = false;
        void err;
      }
      if (!stored) {
        this.#replica.unexpect(seq);
        // It may still be stored later (a publish the cluster has not answered): its puts have an
        // unknown outcome, and this node stops writing so that whoever writes next catches up first.
        const unknown = new RingStoreError(
          'CLUSTER_UNAVAILABLE',
          `domain ${this.domain}: the cluster did not answer whether the message was stored; retry with the same idempotency key`,
          { domain: this.domain },
        );
        for (const t of taken) t.put.reject(unknown);
        this.stepDown('a publish went unanswered');
        return;
      }
    }
    let result: Awaited<typeof applied>;
    try {
      result = await applied;
    } catch (err) {
      for (const t of taken) t.put.reject(err);
      this.stepDown(`applying the domain failed: ${describe(err)}`);
      return;
    }
    if (!result.mine) {
      // Someone else extended the stream: this message was refused, nothing of it is stored.
      this.#queue.unshift(...taken.map((t) => t.put));
      this.#last = Math.max(this.#last, this.#replica.applied);
      if (!(await this.#leases.renew(this.domain))) {
        this.stepDown('another node wrote to the stream (fenced by expected-last-sequence)');
      }
      return;
    }
    this.#last = Math.max(this.#last, seq);
    const outcomes = result.report.outcomes;
    for (let i = 0; i < taken.length; i++) {
      const outcome = outcomes[i]!;
      if (outcome.ok) taken[i]!.put.resolve(outcome.result);
      else taken[i]!.put.reject(fromWire(outcome.error));
    }
  }

  /**
   * Publishes with the fence and a message id; an unanswered publish is sent again (same bytes, same
   * id: JetStream's duplicate window makes the repeat harmless) until it is answered or the publish
   * timeout has passed. 'fenced': JetStream refused the first attempt on the expected sequence;
   * 'unknown': no answer, or a refusal after an unanswered attempt (which may have been stored).
   */
  async #publish(bytes: Uint8Array, id: string): Promise<'stored' | 'fenced' | 'unknown'> {
    const deadline = performance.now() + this.#options.publishTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#js.publish(this.#names.events(this.domain), bytes, {
          msgID: id,
          expect: { lastSequence: this.#last, streamName: this.#names.stream(this.domain) },
          timeout: 2000,
        });
        return 'stored';
      } catch (err) {
        if (isWrongLastSequence(err)) return attempt === 0 ? 'fenced' : 'unknown';
        if (performance.now() > deadline) return 'unknown';
        await new Promise((r) => setTimeout(r, Math.min(1000, 100 * 2 ** attempt)));
      }
    }
  }

  /**
   * Applies the stream up to its last sequence; true when that reaches `seq` (the expectation at
   * `seq` has then settled), false when the stream ends before it.
   */
  async #catchUp(seq: number): Promise<boolean> {
    const deadline = performance.now() + this.#options.publishTimeoutMs;
    for (;;) {
      try {
        const last = await this.#replica.catchUp(this.#options.publishTimeoutMs);
        return last >= seq;
      } catch (err) {
        if (performance.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  /** Takes the queued puts that go into the next message, answering replays and conflicts now. */
  #decide(): { put: QueuedPut; batch: AppendBatch }[] {
    const taken: { put: QueuedPut; batch: AppendBatch }[] = [];
    const versions = new Map<string, number>();
    const keys = new Set<string>();
    let bytes = HEADER_ALLOWANCE;
    const waiting: QueuedPut[] = [];
    while (this.#queue.length > 0) {
      const put = this.#queue[0]!;
      const batch = put.batch;
      const size = batchBytes(batch);
      if (HEADER_ALLOWANCE + size > this.#options.maxMessageBytes) {
        this.#queue.shift();
        put.reject(
          new RingStoreError(
            'MESSAGE_TOO_LARGE',
            `a batch of ${size} bytes does not fit in one NATS message (at most ${this.#options.maxMessageBytes}); raise the server's max_payload`,
            { bytes: size, maxPayload: this.#options.maxMessageBytes },
          ),
        );
        continue;
      }
      if (bytes + size > this.#options.maxMessageBytes) break;
      this.#queue.shift();
      const instance = `${batch.aggregateType}\u0000${batch.aggregateId}`;
      try {
        if (batch.idempotencyKey !== undefined) {
          if (keys.has(`${instance}\u0000${batch.idempotencyKey}`)) {
            // The same key twice in one message: the second waits for the first's result.
            waiting.push(put);
            continue;
          }
          const original = this.#engine.keyedResult(
            this.domain,
            batch.aggregateType,
            batch.aggregateId,
            batch.idempotencyKey,
          );
          if (original) {
            put.resolve({ ...original, replayed: true });
            continue;
          }
        }
        const version =
          versions.get(instance) ?? this.#engine.version(this.domain, batch.aggregateType, batch.aggregateId);
        if (!expectedVersionMatches(batch.expectedVersion, version)) {
          put.reject(versionConflict(version, batch.expectedVersion));
          continue;
        }
        versions.set(instance, version + batch.events.length);
        if (batch.idempotencyKey !== undefined) keys.add(`${instance}\u0000${batch.idempotencyKey}`);
        taken.push({ put, batch: { ...batch, expectedVersion: version } });
        bytes += size;
      } catch (err) {
        put.reject(err);
      }
    }
    this.#queue.unshift(...waiting);
    return taken;
  }
}

function batchBytes(batch: AppendBatch): number {
  let bytes = PER_BATCH_ALLOWANCE + batch.aggregateType.length + (batch.idempotencyKey?.length ?? 0) * 3;
  const events = eventListOf(batch.events);
  for (let i = 0; i < events.length; i++) {
    bytes += events.dataBytes(i) + events.metadataBytes(i) + events.type(i).length + 40;
  }
  return bytes;
}
