import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { RingStoreError } from '../../errors.js';
import { decodeGenerationMessage, type GenerationMessage } from '../../storage/generation-message.js';
import type { AppendReport, GenerationApplier } from '../../storage/types.js';
import type { NatsNames } from './nats-names.js';

/** What the owner learns when the message at an expected sequence has been applied. */
export type Applied = { mine: true; report: AppendReport } | { mine: false };

interface Expectation {
  id: string;
  resolve: (applied: Applied) => void;
  reject: (err: unknown) => void;
}

interface SeqWaiter {
  seq: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * One domain stream applied, in stream order, to this node's store: every node runs one per domain,
 * its owner included. Message `seq` is the domain's generation `seq` (docs/CLUSTER.md).
 *
 * It resumes from its own store: at the domain's last generation (that message once more, which is
 * harmless: every batch in a message names the exact version it extends, so a batch already applied
 * is refused as a conflict and a keyed one replays), so a node that restarts or joins catches up
 * from its checkpoint, not from the stream's start. Applies go one at a time (the owner applies its
 * own message as soon as JetStream acknowledges it; the ordered consumer then skips it).
 */
export class DomainReplica {
  readonly domain: string;
  readonly #engine: GenerationApplier;
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #names: NatsNames;
  /** The stream's last sequence as last seen (by the watchdog or a catch-up). */
  #streamLast = 0;
  /** `applied` when the watchdog last looked. */
  #watched = -1;
  /** The last stream sequence applied (a message whose batches were all refused counts too). */
  #applied: number;
  /** Messages between the last delivered one and the stream's end (the consumer's count). */
  #pending = 0;
  #chain: Promise<void> = Promise.resolve();
  /** Per sequence, the publishers' expectations of it (by message id: an old and a new publisher may both wait on one). */
  readonly #expected = new Map<number, Expectation[]>();
  #waiters: SeqWaiter[] = [];
  #failure: unknown;
  #stopped = false;
  #stop: (() => void) | undefined;
  /** Messages applied since open (metrics). */
  appliedMessages = 0;

  constructor(
    domain: string,
    engine: GenerationApplier,
    js: JetStreamClient,
    jsm: JetStreamManager,
    names: NatsNames,
  ) {
    this.domain = domain;
    this.#jsm = jsm;
    this.#names = names;
    this.#engine = engine;
    this.#js = js;
    this.#applied = Math.max(0, engine.tip(domain).lastGeneration - 1);
  }

  /** The last stream sequence this node has applied. */
  get applied(): number {
    return this.#applied;
  }

  /** Messages of the stream this node has not applied yet, as it last saw the stream. */
  get lag(): number {
    return Math.max(this.#pending, this.#streamLast - this.#applied, 0);
  }

  /**
   * Applies every message up to the stream's last sequence now, reading them directly (not through
   * the consumer): what a new owner does before it decides anything. Returns that last sequence.
   */
  async catchUp(timeoutMs: number): Promise<number> {
    const last = (await this.#jsm.streams.info(this.#names.stream(this.domain))).state.last_seq;
    this.#streamLast = Math.max(this.#streamLast, last);
    const deadline = performance.now() + timeoutMs;
    while (this.#applied < last) {
      if (this.#failure !== undefined) throw this.#failure;
      // A stopped replica applies nothing more: asking for the same message again would only spin
      // until the deadline.
      if (this.#stopped) {
        throw new RingStoreError(
          'STORE_CLOSED',
          `domain ${this.domain}: stopped while catching up, at ${this.#applied} of ${last}`,
        );
      }
      if (performance.now() > deadline) {
        throw new RingStoreError(
          'APPLY_TIMEOUT',
          `domain ${this.domain}: caught up to ${this.#applied} of ${last} within ${timeoutMs} ms`,
          { domain: this.domain, generation: last },
        );
      }
      const seq = this.#applied + 1;
      const message = await this.#jsm.streams.getMessage(this.#names.stream(this.domain), { seq });
      if (!message)
        throw new RingStoreError('REPLICA_DIVERGED', `domain ${this.domain}: message ${seq} is missing`);
      await this.apply(seq, message.data);
    }
    return last;
  }

  /**
   * Called now and then: when the stream has moved on but this replica has not applied anything
   * since the last call, its consumer is restarted (a consumer can stall when its server dies).
   */
  async watch(): Promise<void> {
    const last = (await this.#jsm.streams.info(this.#names.stream(this.domain))).state.last_seq;
    this.#streamLast = Math.max(this.#streamLast, last);
    if (last > this.#applied && this.#applied === this.#watched) this.#stop?.();
    this.#watched = this.#applied;
  }

  get failure(): unknown {
    return this.#failure;
  }

  /** Starts following the stream (an ordered consumer from the resume point); returns at once. */
  start(): void {
    void this.#follow();
  }

  async #follow(): Promise<void> {
    while (!this.#stopped && this.#failure === undefined) {
      try {
        const consumer = await this.#js.consumers.get(this.#names.stream(this.domain), {
          deliver_policy: DeliverPolicy.StartSequence,
          opt_start_seq: this.#applied + 1,
        });
        const messages = await consumer.consume({ max_messages: 256 });
        this.#stop = () => void messages.stop();
        if (this.#stopped) messages.stop();
        for await (const m of messages) {
          this.#pending = m.info.pending;
          await this.apply(m.seq, m.data);
          if (this.#failure !== undefined) break;
        }
        messages.stop();
      } catch {
        // The stream is unreachable for now (a server restarting, a leader election): follow again.
      }
      if (!this.#stopped) await new Promise((r) => setTimeout(r, 250));
    }
  }

  /**
   * Applies the message at `seq` unless it already was. Applies run in call order; a message out of
   * order (a gap) is refused, since every generation must see all the ones before it.
   */
  apply(seq: number, bytes: Uint8Array | GenerationMessage): Promise<void> {
    const run = this.#chain.then(() => this.#applyNow(seq, bytes));
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #applyNow(seq: number, bytes: Uint8Array | GenerationMessage): Promise<void> {
    if (seq <= this.#applied || this.#failure !== undefined || this.#stopped) return;
    try {
      if (seq !== this.#applied + 1) {
        throw new RingStoreError(
          'REPLICA_DIVERGED',
          `domain ${this.domain}: message ${seq} arrived after ${this.#applied}; a message is missing`,
          { domain: this.domain, generation: seq },
        );
      }
      const message = bytes instanceof Uint8Array ? decodeGenerationMessage(bytes) : bytes;
      if (message.domain !== this.domain) {
        throw new RingStoreError(
          'REPLICA_DIVERGED',
          `a message of ${message.domain} in the stream of ${this.domain}`,
          {
            domain: this.domain,
            generation: seq,
          },
        );
      }
      const report = await this.#engine.applyGeneration(message.batches, {
        generation: seq,
        timestamp: message.timestamp,
      });
      this.#applied = seq;
      this.appliedMessages++;
      const expectations = this.#expected.get(seq);
      if (expectations) {
        this.#expected.delete(seq);
        for (const e of expectations)
          e.resolve(e.id === message.id ? { mine: true, report } : { mine: false });
      }
      this.#wake();
    } catch (err) {
      this.#fail(err);
      throw err;
    }
  }

  /** Resolves when the message at `seq` is applied: with its report if its id is `id`. */
  expect(seq: number, id: string): Promise<Applied> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (seq <= this.#applied) return Promise.resolve({ mine: false });
    return new Promise((resolve, reject) => {
      const expectations = this.#expected.get(seq);
      if (expectations) expectations.push({ id, resolve, reject });
      else this.#expected.set(seq, [{ id, resolve, reject }]);
    });
  }

  /** Drops the expectation of message `id` at `seq` (its publish was certainly not stored). */
  unexpect(seq: number, id: string): void {
    const expectations = this.#expected.get(seq)?.filter((e) => e.id !== id);
    if (expectations === undefined) return;
    if (expectations.length > 0) this.#expected.set(seq, expectations);
    else this.#expected.delete(seq);
  }

  /** Resolves once every message up to `seq` is applied. */
  waitFor(seq: number, timeoutMs: number): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (seq <= this.#applied) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(
          new RingStoreError(
            'APPLY_TIMEOUT',
            `domain ${this.domain}: message ${seq} not applied within ${timeoutMs} ms (applied ${this.#applied})`,
            { domain: this.domain, generation: seq },
          ),
        );
      }, timeoutMs);
      const waiter: SeqWaiter = {
        seq,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.#waiters.push(waiter);
    });
  }

  stop(): void {
    this.#stopped = true;
    this.#stop?.();
    const closed = new RingStoreError('STORE_CLOSED');
    for (const w of this.#waiters) w.reject(closed);
    this.#waiters = [];
    for (const expectations of this.#expected.values()) for (const e of expectations) e.reject(closed);
    this.#expected.clear();
  }

  #wake(): void {
    if (this.#waiters.length === 0) return;
    const still: SeqWaiter[] = [];
    for (const w of this.#waiters) {
      if (w.seq <= this.#applied) w.resolve();
      else still.push(w);
    }
    this.#waiters = still;
  }

  #fail(err: unknown): void {
    this.#failure ??= err;
    for (const w of this.#waiters) w.reject(err);
    this.#waiters = [];
    for (const expectations of this.#expected.values()) for (const e of expectations) e.reject(err);
    this.#expected.clear();
  }
}
