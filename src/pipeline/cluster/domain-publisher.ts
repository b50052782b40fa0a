import { randomUUID } from 'node:crypto';
import type { JetStreamClient } from '@nats-io/jetstream';
import { RingStoreError } from '../../errors.js';
import { encodeGenerationMessage, type GenerationMessage } from '../../storage/generation-message.js';
import type { AppendBatch, AppendOutcome, GenerationApplier } from '../../storage/types.js';
import type { DomainReplica } from './domain-replica.js';
import { decideGeneration } from './generation-decision.js';
import { describe, isWrongLastSequence } from './nats-errors.js';
import type { NatsNames } from './nats-names.js';

export interface PublisherOptions {
  node: string;
  /** Most bytes of one message (the server's max_payload). */
  maxMessageBytes: number;
  /** How long an unanswered publish is retried (same bytes, same message id) before giving up. */
  publishTimeoutMs: number;
  /** The owner's clock: each message's timestamp (ms). */
  clock: () => number;
}

/** Why a publisher stopped: 'fenced' when JetStream refused its message on the expected sequence. */
export type StepDownReason = 'fenced' | 'unanswered' | 'apply-failed' | 'disowned';

/**
 * The writing side of one domain on the writer thread of the node that holds its lease: it turns
 * the batches the ring brought for the domain into generation messages (decideGeneration), commits
 * each as ONE JetStream message fenced by `Nats-Expected-Last-Sequence`, and answers a batch only
 * once JetStream acknowledged its message and this node's store applied it (through the domain's
 * replica, so that own and other nodes' messages are applied in stream order, one at a time).
 *
 *   decide ── encode ── publish(expect last = #last) ── PubAck(seq) ── apply seq ── outcomes
 *                                └── wrong last sequence: someone else extended the stream
 *                                    → nothing of it is stored: NOT_OWNER, step down
 *
 * Commits of one publisher run one after another (the caller, ClusterTarget, serializes them), so
 * each is decided against a store that holds every message before it.
 */
export class DomainPublisher {
  readonly domain: string;
  readonly #store: GenerationApplier;
  readonly #replica: DomainReplica;
  readonly #js: JetStreamClient;
  readonly #names: NatsNames;
  readonly #options: PublisherOptions;
  /** The stream sequence the next message must follow. */
  #last: number;
  #stopped: StepDownReason | undefined;
  /** Messages this publisher had JetStream store (metrics). */
  published = 0;

  private constructor(
    domain: string,
    store: GenerationApplier,
    replica: DomainReplica,
    js: JetStreamClient,
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
    this.#last = last;
  }

  /** Starts writing a domain whose lease is held: catches up to the stream's last sequence first. */
  static async start(
    domain: string,
    store: GenerationApplier,
    replica: DomainReplica,
    js: JetStreamClient,
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

  /** The last stream sequence this publisher wrote or caught up to (its fence). */
  get last(): number {
    return this.#last;
  }

  stepDown(reason: StepDownReason): void {
    this.#stopped ??= reason;
  }

  /**
   * Commits the batches (all of this domain, in ring order) in as few messages as they fit in;
   * one outcome per batch. A batch that was certainly not stored fails with NOT_OWNER once the
   * publisher has stepped down (safe to route again); one whose message's fate is unknown fails with
   * CLUSTER_UNAVAILABLE (retry with its idempotency key).
   */
  async commit(batches: readonly AppendBatch[]): Promise<AppendOutcome[]> {
    const outcomes: AppendOutcome[] = new Array(batches.length);
    let pending = batches.map((_, i) => i);
    while (pending.length > 0) {
      if (!this.active) {
        const refused = this.#notOwnerError(`this node stopped writing the domain (${this.#stopped})`);
        for (const i of pending) outcomes[i] = { ok: false, error: refused.toWire() };
        break;
      }
      const decisions = decideGeneration(
        this.#store,
        this.domain,
        pending.map((i) => batches[i]!),
        this.#options.maxMessageBytes,
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
        else if (decision.kind === 'refuse') outcomes[i] = { ok: false, error: decision.error.toWire() };
        else later.push(i);
      });
      if (taken.length > 0) {
        const applied = await this.#publishAndApply(message);
        for (let k = 0; k < taken.length; k++) outcomes[taken[k]!] = applied[k]!;
      }
      pending = later;
    }
    return outcomes;
  }

  /** One message: the fence, the acknowledgement, the apply; one outcome per batch of it. */
  async #publishAndApply(message: GenerationMessage): Promise<AppendOutcome[]> {
    const now = Math.floor(this.#options.clock());
    message.timestamp = Math.max(
      Number.isSafeInteger(now) ? now : 0,
      this.#store.tip(this.domain).lastTimestamp,
    );
    const bytes = encodeGenerationMessage(message);
    const seq = this.#last + 1;
    const applied = this.#replica.expect(seq, message.id);
    applied.catch(() => undefined);
    const published = await this.#publish(bytes, message.id);
    const failAll = (error: RingStoreError): AppendOutcome[] =>
      message.batches.map(() => ({ ok: false, error: error.toWire() }));
    if (published === 'stored') {
      this.published++;
      this.#last = seq;
      // Applied here at once; the consumer will skip it.
      this.#replica.apply(seq, message).catch(() => undefined);
    } else {
      // Not certainly stored (or stored by someone else): learn from the stream what message `seq` is.
      let reached: boolean;
      try {
        reached = (await this.#catchUp()) >= seq;
      } catch {
        reached = false;
      }
      if (!reached) {
        this.#replica.unexpect(seq);
        this.stepDown(published === 'fenced' ? 'fenced' : 'unanswered');
        // It may still be stored later (a publish the cluster has not answered): its puts have an
        // unknown outcome, and this node stops writing so that whoever writes next catches up first.
        return failAll(
          published === 'fenced'
            ? this.#notOwnerError('another node extended the stream (fenced by expected-last-sequence)')
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
      const error =
        err instanceof RingStoreError
          ? err
          : new RingStoreError('STORE_FAILED', `domain ${this.domain}: applying failed: ${describe(err)}`);
      return failAll(error);
    }
    if (!result.mine) {
      // Someone else extended the stream: this message was refused, nothing of it is stored.
      this.stepDown('fenced');
      return failAll(
        this.#notOwnerError('another node extended the stream (fenced by expected-last-sequence)'),
      );
    }
    this.#last = Math.max(this.#last, seq);
    return result.report.outcomes;
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

  #notOwnerError(reason: string): RingStoreError {
    return new RingStoreError('NOT_OWNER', `domain ${this.domain}: ${reason}`, { domain: this.domain });
  }
}
