import { randomUUID } from 'node:crypto';
import type { JetStreamClient } from '@nats-io/jetstream';
import { RingStoreError } from '../../errors.js';
import { eventListOf } from '../../storage/event-list.js';
import { encodeGenerationMessage, type GenerationMessage } from '../../storage/generation-message.js';
import type { AppendBatch, AppendOutcome, GenerationApplier } from '../../storage/types.js';
import type { DomainReplica } from './domain-replica.js';
import { decideGeneration, instanceOf, keyOf } from './generation-decision.js';
import { describe, isWrongLastSequence } from './nats-errors.js';
import type { NatsNames } from './nats-names.js';

export interface PublisherOptions {
  node: string;
  /** Most bytes of one message (the server's max_payload). */
  maxMessageBytes: number;
  /** How long an unanswered publish is retried (same bytes, same message id) before giving up. */
  publishTimeoutMs: number;
  /** Messages of the domain published but not yet acknowledged and applied, at most (≥ 1). */
  maxInFlight: number;
  /** The owner's clock: each message's timestamp (ms). */
  clock: () => number;
}

/** Why a publisher stopped: 'fenced' when JetStream refused its message on the expected sequence. */
export type StepDownReason = 'fenced' | 'unanswered' | 'apply-failed' | 'disowned';

/** What the publisher needs of the domain's replica (DomainReplica). */
export type ReplicaLink = Pick<DomainReplica, 'catchUp' | 'expect' | 'unexpect' | 'apply'>;

/** What the publisher needs of its JetStream client. */
export type Publishing = Pick<JetStreamClient, 'publish'>;

/** A message sent and not yet applied (or failed): what later decisions must count. */
interface InFlight {
  seq: number;
  /** Settles once the message was applied here or failed; never rejects. */
  handled: Promise<void>;
}

/**
 * The writing side of one domain on the writer thread of the node that holds its lease: it turns
 * the batches the ring brought for the domain into generation messages (decideGeneration), commits
 * each as ONE JetStream message fenced by `Nats-Expected-Last-Sequence`, and answers a batch only
 * once JetStream acknowledged its message and this node's store applied it (through the domain's
 * replica, so that own and other nodes' messages are applied in stream order, one at a time).
 *
 *   decide ── encode ── publish(expect last seq = s-1, last msg id = message s-1's) ─ PubAck(s)
 *     │                                 └── refused: someone else extended the stream; nothing
 *     │                                     of it is stored: NOT_OWNER, step down
 *     └── the next message is decided and published at once, counting this one (pipelining):
 *         up to maxInFlight messages per domain are published and not yet applied; they are
 *         applied in sequence order, each after the one before it
 *
 * A message after the first in flight also names its predecessor's message id
 * (`Nats-Expected-Last-Msg-Id`): it is stored only directly after that message, so a message
 * decided on the assumption that its predecessor is stored can never land after anything else.
 * Decisions are made one commit after another (`commit` calls are decided in call order).
 */
export class DomainPublisher {
  readonly domain: string;
  readonly #store: GenerationApplier;
  readonly #replica: ReplicaLink;
  readonly #js: Publishing;
  readonly #names: NatsNames;
  readonly #options: PublisherOptions;
  /** The stream sequence the next message gets (one past the last sent or caught up to). */
  #next: number;
  /** The id of the message at #next - 1 when this publisher sent it, else undefined. */
  #lastSentId: string | undefined;
  #lastTimestamp = 0;
  /** The last sequence applied here as this publisher's own (or caught up to at the start). */
  #appliedThrough: number;
  #stopped: StepDownReason | undefined;
  /** Messages sent and not yet handled, oldest first. */
  readonly #inFlight: InFlight[] = [];
  /** Per instance, its version once every message in flight is applied, and the last such message. */
  readonly #pendingVersions = new Map<string, { version: number; seq: number }>();
  /** Idempotency keys (keyOf) in messages in flight, with the message's sequence. */
  readonly #pendingKeys = new Map<string, number>();
  /** Commits are decided in call order: the next waits for this one's decisions and sends. */
  #deciding: Promise<void> = Promise.resolve();
  /** The store's state with the messages in flight counted in. */
  readonly #view: Pick<GenerationApplier, 'version' | 'keyedResult'>;
  /** Messages this publisher had JetStream store (metrics). */
  published = 0;
  /** The most messages of this domain that were in flight at once (metrics, tests). */
  mostInFlight = 0;

  constructor(
    domain: string,
    store: GenerationApplier,
    replica: ReplicaLink,
    js: Publishing,
    names: NatsNames,
    options: PublisherOptions,
    last: number,
  ) {
    this.domain = domain;
    this.#store = store;
    this.#replica = replica;
    this.#js = js;
    this.#names = names;
    this.#options = options;
    this.#next = last + 1;
    this.#appliedThrough = last;
    this.#view = {
      version: (d, type, id) =>
        this.#pendingVersions.get(`${type}\u0000${id}`)?.version ?? store.version(d, type, id),
      keyedResult: (d, type, id, key) => store.keyedResult(d, type, id, key),
    };
  }

  /** Starts writing a domain whose lease is held: catches up to the stream's last sequence first. */
  static async start(
    domain: string,
    store: GenerationApplier,
    replica: ReplicaLink,
    js: Publishing,
    names: NatsNames,
    options: PublisherOptions,
  ): Promise<DomainPublisher> {
    const last = await replica.catchUp(options.publishTimeoutMs);
    return new DomainPublisher(domain, store, replica, js, names, options, last);
  }

  get active(): boolean {
    return this.#stopped === undefined;
  }

  /** Why it stopped, once it has. */
  get stopped(): StepDownReason | undefined {
    return this.#stopped;
  }

  /** The last stream sequence this publisher sent or caught up to (the next message's fence). */
  get last(): number {
    return this.#next - 1;
  }

  stepDown(reason: StepDownReason): void {
    this.#stopped ??= reason;
  }

  /**
   * Resolves once every message it sent has been handled (applied here, or failed): after a step
   * down, when its count of published messages is final.
   */
  async drained(): Promise<void> {
    await this.#deciding;
    await Promise.all(this.#inFlight.map((entry) => entry.handled));
  }

  /**
   * Commits the batches (all of this domain, in ring order) in as few messages as they fit in;
   * one outcome per batch. A batch that was certainly not stored fails with NOT_OWNER once the
   * publisher has stepped down (safe to route again); one whose message's fate is unknown fails with
   * CLUSTER_UNAVAILABLE (retry with its idempotency key). Resolves once every message of it has been
   * applied (or failed); the next call's messages may be published before that.
   */
  commit(batches: readonly AppendBatch[]): Promise<AppendOutcome[]> {
    const outcomes: AppendOutcome[] = new Array(batches.length);
    const decided = this.#deciding.then(() => this.#decideAndSend(batches, outcomes));
    this.#deciding = decided.then(
      () => undefined,
      () => undefined,
    );
    return decided.then(async (applied) => {
      await Promise.all(applied);
      return outcomes;
    });
  }

  /** Decides and sends every batch (or answers it); returns the applies to wait for. */
  async #decideAndSend(batches: readonly AppendBatch[], outcomes: AppendOutcome[]): Promise<Promise<void>[]> {
    const applies: Promise<void>[] = [];
    let pending = batches.map((_, i) => i);
    while (pending.length > 0) {
      if (!this.active) {
        const refused = this.#notOwner(`this node stopped writing the domain (${this.#stopped})`);
        for (const i of pending) outcomes[i] = { ok: false, error: refused.toWire() };
        break;
      }
      // Room for one more message in flight; the oldest settles first.
      while (this.#inFlight.length >= this.#options.maxInFlight) await this.#inFlight[0]!.handled;
      const decisions = decideGeneration(
        this.#view,
        this.domain,
        pending.map((i) => batches[i]!),
        this.#options.maxMessageBytes,
        new Set(this.#pendingKeys.keys()),
      );
      const taken: number[] = [];
      const message: GenerationMessage = {
        domain: this.domain,
        node: this.#options.node,
        id: randomUUID(),
        timestamp: 0,
        batches: [],
      };
      const later: number[] = [];
      decisions.forEach((decision, k) => {
        const i = pending[k]!;
        if (decision.kind === 'take') {
          taken.push(i);
          message.batches.push(decision.batch);
        } else if (decision.kind === 'replay') outcomes[i] = { ok: true, result: decision.result };
        else if (decision.kind === 'refuse' && !this.#dependsOnInFlight(decision.error, batches[i]!))
          outcomes[i] = { ok: false, error: decision.error.toWire() };
        else later.push(i);
      });
      if (taken.length > 0) {
        applies.push(
          this.#send(message).then((results) => {
            for (let k = 0; k < taken.length; k++) outcomes[taken[k]!] = results[k]!;
          }),
        );
      } else if (later.length > 0) {
        // Waiting for a key or a version in flight: decided again once the newest message is handled.
        const newest = this.#inFlight[this.#inFlight.length - 1];
        if (newest) await newest.handled;
      }
      pending = later;
    }
    return applies;
  }

  /**
   * Publishes one message now (in sequence order with the others of this publisher) and returns
   * its outcomes once it is applied here, after every message before it.
   */
  #send(message: GenerationMessage): Promise<AppendOutcome[]> {
    const now = Math.floor(this.#options.clock());
    message.timestamp = Math.max(
      Number.isSafeInteger(now) ? now : 0,
      this.#store.tip(this.domain).lastTimestamp,
      this.#lastTimestamp,
    );
    this.#lastTimestamp = message.timestamp;
    const bytes = encodeGenerationMessage(message);
    const seq = this.#next++;
    const previousId = this.#lastSentId;
    this.#lastSentId = message.id;
    for (const batch of message.batches) {
      const expected = batch.expectedVersion as number;
      this.#pendingVersions.set(instanceOf(batch), {
        version: expected + eventListOf(batch.events).length,
        seq,
      });
      const key = keyOf(batch);
      if (key !== undefined) this.#pendingKeys.set(key, seq);
    }
    const applied = this.#replica.expect(seq, message.id);
    applied.catch(() => undefined);
    const published = this.#publish(bytes, message.id, seq - 1, previousId);
    const before = this.#inFlight[this.#inFlight.length - 1]?.handled;
    const outcome = (async () => {
      const result = await published;
      // Applied (or failed) in sequence order: never a message before the one it follows.
      await before;
      return this.#settle(message, seq, result, applied);
    })();
    const entry: InFlight = {
      seq,
      handled: outcome.then(
        () => this.#forget(seq),
        () => this.#forget(seq),
      ),
    };
    this.#inFlight.push(entry);
    this.mostInFlight = Math.max(this.mostInFlight, this.#inFlight.length);
    return outcome;
  }

  /** A message's fate once its publish has returned: apply it, or learn from the stream. */
  async #settle(
    message: GenerationMessage,
    seq: number,
    published: 'stored' | 'fenced' | 'unknown',
    applied: Promise<Awaited<ReturnType<ReplicaLink['expect']>>>,
  ): Promise<AppendOutcome[]> {
    const failAll = (error: RingStoreError): AppendOutcome[] =>
      message.batches.map(() => ({ ok: false, error: error.toWire() }));
    if (published === 'stored') {
      this.published++;
      if (this.#appliedThrough === seq - 1) {
        // Applied here at once; the consumer will skip it.
        this.#replica.apply(seq, message).catch(() => undefined);
      } else {
        // The message before it was not applied as ours (it failed here, yet the stream has it):
        // this one is applied from the stream, in order, never ahead of it.
        await this.#catchUp().catch(() => undefined);
      }
    } else {
      // Not certainly stored (or stored by someone else): learn from the stream what message `seq` is.
      let reached: boolean;
      try {
        reached = (await this.#catchUp()) >= seq;
      } catch {
        reached = false;
      }
      if (!reached) {
        this.#replica.unexpect(seq, message.id);
        this.stepDown(published === 'fenced' ? 'fenced' : 'unanswered');
        // It may still be stored later (a publish the cluster has not answered): its puts have an
        // unknown outcome, and this node stops writing so that whoever writes next catches up first.
        return failAll(
          published === 'fenced'
            ? this.#notOwner('another node extended the stream (fenced by expected-last-sequence)')
            : new RingStoreError(
                'CLUSTER_UNAVAILABLE',
                `domain ${this.domain}: the cluster did not answer whether the message was stored; retry with the same idempotency key`,
                { domain: this.domain },
              ),
        );
      }
    }
    let result: Awaited<typeof applied>;
    try {
      result = await applied;
    } catch (err) {
      this.stepDown('apply-failed');
      // The stream holds the message (every other node applies it); only this node's store could
      // not: its puts must not read as "not written".
      return failAll(
        new RingStoreError(
          'CLUSTER_UNAVAILABLE',
          `domain ${this.domain}: the message is in the domain's stream but this node could not apply it (${describe(err)}); retry with the same idempotency key on another node`,
          { domain: this.domain },
        ),
      );
    }
    if (!result.mine) {
      // Someone else extended the stream: this message was refused, nothing of it is stored.
      this.stepDown('fenced');
      return failAll(this.#notOwner('another node extended the stream (fenced by expected-last-sequence)'));
    }
    this.#appliedThrough = seq;
    return result.report.outcomes;
  }

  /**
   * A version conflict found against a version that messages in flight will make (not yet the
   * store's): answered only once they are applied, since a refused message would make it untrue.
   */
  #dependsOnInFlight(error: RingStoreError, batch: AppendBatch): boolean {
    return error.code === 'VERSION_CONFLICT' && this.#pendingVersions.has(instanceOf(batch));
  }

  /** Drops what a handled message added to the decisions' view (the store holds it now, or never). */
  #forget(seq: number): void {
    if (this.#inFlight[0]?.seq === seq) this.#inFlight.shift();
    for (const [instance, pending] of this.#pendingVersions) {
      if (pending.seq <= seq) this.#pendingVersions.delete(instance);
    }
    for (const [key, at] of this.#pendingKeys) if (at <= seq) this.#pendingKeys.delete(key);
  }

  /**
   * Publishes with the fence and a message id; an unanswered publish is sent again (same bytes, same
   * id: JetStream's duplicate window makes the repeat harmless) until it is answered or the publish
   * timeout has passed. 'fenced': JetStream refused the first attempt on the expected sequence (or
   * last message id); 'unknown': no answer, or a refusal after an unanswered attempt (which may
   * have been stored).
   */
  async #publish(
    bytes: Uint8Array,
    id: string,
    lastSequence: number,
    lastMsgID: string | undefined,
  ): Promise<'stored' | 'fenced' | 'unknown'> {
    const deadline = performance.now() + this.#options.publishTimeoutMs;
    const expect = {
      lastSequence,
      streamName: this.#names.stream(this.domain),
      ...(lastMsgID !== undefined ? { lastMsgID } : {}),
    };
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#js.publish(this.#names.events(this.domain), bytes, { msgID: id, expect, timeout: 2000 });
        return 'stored';
      } catch (err) {
        if (isWrongLastSequence(err)) return attempt === 0 ? 'fenced' : 'unknown';
        if (performance.now() > deadline) return 'unknown';
        await new Promise((r) => setTimeout(r, Math.min(1000, 100 * 2 ** attempt)));
      }
    }
  }

  /** Applies the stream up to its last sequence (retrying until the publish timeout); returns it. */
  async #catchUp(): Promise<number> {
    const deadline = performance.now() + this.#options.publishTimeoutMs;
    for (;;) {
      try {
        return await this.#replica.catchUp(this.#options.publishTimeoutMs);
      } catch (err) {
        if (performance.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  #notOwner(reason: string): RingStoreError {
    return new RingStoreError('NOT_OWNER', `domain ${this.domain}: ${reason}`, { domain: this.domain });
  }
}
