import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { RingStoreError, type WireError } from '../../errors.js';
import { validateDomain } from '../../model/names.js';
import type { AppendReport, CacheStats, CommitDelta } from '../../storage/types.js';
import type { StorageWriter } from '../../storage/writer.js';
import type { Durability } from '../../types.js';
import { ClusterTarget } from './cluster-target.js';
import { DomainPublisher, type StepDownReason } from './domain-publisher.js';
import { DomainReplica } from './domain-replica.js';
import { connectJetStream } from './jetstream-connection.js';
import { describe } from './nats-errors.js';
import { NatsNames } from './nats-names.js';
import { ReplicatedWriter } from './replicated-writer.js';

/** What the writer thread needs to join a cluster (RingStore.open's `cluster`, resolved). */
export interface ClusterWriterConfig {
  servers: string[];
  nodeId: string;
  namespace: string;
  /** How long an unanswered publish is retried, and a catch-up may take. */
  putTimeoutMs: number;
}

/**
 * The main thread's requests to the writer thread's cluster side, numbered by the main thread (one
 * increasing sequence for all domains, so a number never comes twice): every answer names the 'own'
 * it answers, so that a late answer to an earlier request (a step-down of a publisher the main
 * thread has already replaced) is told apart and ignored.
 */
export type ClusterControl =
  | { type: 'own'; domain: string; request: number }
  | { type: 'disown'; domain: string; request: number };

/** One domain stream as this node's writer thread follows it. */
export interface ReplicaStatus {
  domain: string;
  /** The last stream sequence (= generation) applied. */
  applied: number;
  /** Messages of the stream not applied yet (as last seen). */
  lag: number;
  failed?: string;
}

/** What the writer thread's cluster side tells the main thread (besides the ring's commit messages). */
export type ClusterWriterMessage =
  | {
      /** A generation committed to this node's store (another owner's or this node's own). */
      type: 'replicated';
      /** Its generation: the stream sequence of its message in the domains of the delta. */
      generation: number;
      delta: CommitDelta;
      caches: CacheStats[];
      fsyncs: number;
      syncSeconds: number[];
      appendedEvents: number;
      appendedBytes: number;
      generations: number;
    }
  /** The answer to 'own': caught up to `last`, the domain's puts may enter the ring now. */
  | { type: 'owning'; domain: string; request: number; last: number }
  | { type: 'own-failed'; domain: string; request: number; error: WireError }
  /** The writer stopped writing a domain (posted before the commit that fails its batches). */
  | { type: 'stepped-down'; domain: string; request: number; reason: StepDownReason }
  /** After a commit that published: the node's count of stored messages (before its commit message). */
  | { type: 'published'; publishedMessages: number }
  /** Every domain followed, now and then (a commit's 'replicated' updates its domains between). */
  | { type: 'cluster-status'; domains: ReplicaStatus[]; publishedMessages: number };

const DISCOVERY_MS = 2000;
/** Generation messages of one domain published and not yet applied, at most (pipelining). */
const MESSAGES_IN_FLIGHT = 4;
const STATUS_MS = 500;
const utf8Decoder = new TextDecoder();

/**
 * The writer thread's part of a cluster node (docs/CLUSTER.md): the writer thread owns the store
 * files, so everything that writes them lives here, on a NATS connection of its own:
 *
 *   replicas    every domain stream (found by listing streams and by notices) is applied in order
 *               to the store (DomainReplica over ReplicatedWriter), which posts each commit's delta
 *               to the main thread's reader ('replicated')
 *   publishers  the domains the main thread took the lease of ('own'): DomainPublisher, reached
 *               through the writer loop's ClusterTarget
 *
 * Leases, forwarding and routing are the main thread's (src/api/cluster); it asks this side to
 * start or stop writing a domain, and learns here when a publisher stepped down (fenced).
 */
export class ClusterWriterNode {
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #names: NatsNames;
  readonly #config: ClusterWriterConfig;
  readonly #store: ReplicatedWriter;
  readonly #post: (message: ClusterWriterMessage) => void;
  readonly #replicas = new Map<string, DomainReplica>();
  readonly #publishers = new Map<string, DomainPublisher>();
  /**
   * Per domain, the last 'own' request, until a 'disown' removes it or its publisher steps down: a
   * catch-up whose request is no longer the domain's entry was outdated by a later request and is
   * dropped.
   */
  readonly #requests = new Map<string, number>();
  /** The 'own' request each publisher answers to (named in its step-down). */
  readonly #requestOf = new WeakMap<DomainPublisher, number>();
  readonly #maxPayload: number;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly target: ClusterTarget;
  /** Messages published by publishers that have stepped down since. */
  #published = 0;
  /** The count of published messages last told to the main thread. */
  #publishedPosted = 0;
  /** Per domain, the generation of the last commit applied (ahead of its replica's count while it settles). */
  readonly #applied = new Map<string, number>();
  #closed = false;

  private constructor(
    nc: NatsConnection,
    js: JetStreamClient,
    jsm: JetStreamManager,
    config: ClusterWriterConfig,
    storage: StorageWriter,
    durability: Durability,
    post: (message: ClusterWriterMessage) => void,
  ) {
    this.#nc = nc;
    this.#js = js;
    this.#jsm = jsm;
    this.#config = config;
    this.#names = new NatsNames(config.namespace);
    this.#post = post;
    this.#maxPayload = nc.info?.max_payload ?? 1024 * 1024;
    this.#store = new ReplicatedWriter(storage, durability, (report, stamp) =>
      this.#replicated(report, stamp.generation),
    );
    this.target = new ClusterTarget(
      (domain) => this.#publisherOf(domain),
      storage,
      durability,
      () => this.settle(),
    );
  }

  /** Connects to NATS; follow() then starts following the namespace's domain streams. */
  static async start(
    config: ClusterWriterConfig,
    storage: StorageWriter,
    durability: Durability,
    post: (message: ClusterWriterMessage) => void,
  ): Promise<ClusterWriterNode> {
    const { nc, js, jsm } = await connectJetStream(config.servers, `ringstore-${config.nodeId}-writer`);
    return new ClusterWriterNode(nc, js, jsm, config, storage, durability, post);
  }

  /** Handles a request of the main thread. */
  control(message: ClusterControl): void {
    if (message.type === 'own') {
      this.#requests.set(message.domain, message.request);
      void this.#own(message.domain, message.request);
    } else {
      this.#requests.delete(message.domain);
      this.#stepDown(message.domain, 'disowned');
    }
  }

  async #own(domain: string, request: number): Promise<void> {
    try {
      const current = this.#publishers.get(domain);
      if (current?.active) {
        // The same publisher now answers to this request.
        this.#requestOf.set(current, request);
        this.#post({ type: 'owning', domain, request, last: current.last });
        return;
      }
      // A publisher that stepped down may still have messages in flight. The new one does not wait
      // for them: the replica answers every expectation of a sequence by the message the stream
      // holds there, so an old message stored first is the old publisher's, and the new one's at
      // that sequence is refused by the fence (it steps down, its puts are routed again).
      if (current) this.#retire(current, false);
      const replica = this.#follow(domain);
      const publisher = await DomainPublisher.start(domain, this.#store, replica, this.#js, this.#names, {
        node: this.#config.nodeId,
        maxMessageBytes: this.#maxPayload,
        publishTimeoutMs: this.#config.putTimeoutMs,
        maxInFlight: MESSAGES_IN_FLIGHT,
        clock: Date.now,
      });
      if (this.#requests.get(domain) !== request) {
        // Disowned (or asked again) while it caught up: the main thread no longer waits for this one.
        publisher.stepDown('disowned');
        return;
      }
      this.#publishers.set(domain, publisher);
      this.#requestOf.set(publisher, request);
      this.#post({ type: 'owning', domain, request, last: publisher.last });
      this.#postStatus();
    } catch (err) {
      const error =
        err instanceof RingStoreError
          ? err
          : new RingStoreError('NOT_OWNER', `domain ${domain}: could not start writing (${describe(err)})`, {
              domain,
            });
      this.#post({ type: 'own-failed', domain, request, error: error.toWire() });
    }
  }

  #stepDown(domain: string, reason: StepDownReason): void {
    this.#publishers.get(domain)?.stepDown(reason);
  }

  /** The active publisher of a domain; tells the main thread once when one has stepped down. */
  #publisherOf(domain: string): DomainPublisher | undefined {
    const publisher = this.#publishers.get(domain);
    if (publisher && !publisher.active) this.#retire(publisher);
    return this.#publishers.get(domain);
  }

  /**
   * Takes a publisher that stepped down out of use, tells the main thread why (unless it asked for
   * it, or asked to own the domain again), and counts its messages once all of them are handled.
   */
  #retire(publisher: DomainPublisher, report = true): void {
    const domain = publisher.domain;
    if (this.#publishers.get(domain) !== publisher) return;
    this.#publishers.delete(domain);
    if (report && publisher.stopped !== 'disowned') {
      const request = this.#requestOf.get(publisher) ?? 0;
      // The domain's request is answered for good, unless a later one came (its catch-up runs).
      if (this.#requests.get(domain) === request) this.#requests.delete(domain);
      this.#post({ type: 'stepped-down', domain, request, reason: publisher.stopped! });
    }
    const count = () => {
      this.#published += publisher.published;
    };
    publisher.drained().then(count, count);
  }

  /**
   * Reports the publishers that stepped down: called by the target after each commit, before the
   * loop's commit message fails their batches, and with each status.
   */
  settle(): void {
    for (const publisher of [...this.#publishers.values()]) if (!publisher.active) this.#retire(publisher);
    const published = this.#publishedMessages();
    if (published !== this.#publishedPosted) {
      this.#publishedPosted = published;
      this.#post({ type: 'published', publishedMessages: published });
    }
  }

  /** Messages this node's publishers had JetStream store since open. */
  #publishedMessages(): number {
    let published = this.#published;
    for (const publisher of this.#publishers.values()) published += publisher.published;
    return published;
  }

  #replicated(report: AppendReport, generation: number): void {
    this.#post({
      type: 'replicated',
      generation,
      delta: report.delta,
      caches: report.caches,
      fsyncs: report.fsyncs,
      syncSeconds: report.syncSeconds,
      appendedEvents: report.appendedEvents,
      appendedBytes: report.appendedBytes,
      generations: report.generations,
    });
    for (const entry of report.delta.domains) {
      this.#applied.set(entry.domain, Math.max(this.#applied.get(entry.domain) ?? 0, generation));
    }
  }

  /**
   * Starts following every domain stream of the namespace: once the main thread's reader listens
   * for the commits the replicas post.
   */
  follow(): void {
    if (this.#closed || this.#timers.length > 0) return;
    void this.#startFollowing().catch(() => undefined);
  }

  async #startFollowing(): Promise<void> {
    const discovery = setInterval(() => void this.#discover().catch(() => undefined), DISCOVERY_MS);
    const status = setInterval(() => this.#postStatus(), STATUS_MS);
    this.#timers.push(discovery, status);
    this.#nc.subscribe(this.#names.domains, {
      callback: (_err, msg) => {
        const domain = utf8Decoder.decode(msg.data);
        if (isDomain(domain)) this.#follow(domain);
      },
    });
    await this.#discover();
    this.#postStatus();
  }

  /** Starts following a domain stream (once). */
  #follow(domain: string): DomainReplica {
    let replica = this.#replicas.get(domain);
    if (!replica) {
      replica = new DomainReplica(domain, this.#store, this.#js, this.#jsm, this.#names);
      this.#replicas.set(domain, replica);
      if (!this.#closed) replica.start();
    }
    return replica;
  }

  async #discover(): Promise<void> {
    for await (const name of this.#jsm.streams.names()) {
      const domain = this.#names.domainOfStream(name);
      if (domain !== undefined && isDomain(domain)) this.#follow(domain);
    }
    await Promise.all([...this.#replicas.values()].map((r) => r.watch().catch(() => undefined)));
  }

  #postStatus(): void {
    if (this.#closed) return;
    this.settle();
    const domains = [...this.#replicas.values()]
      .map((r) => {
        const applied = Math.max(r.applied, this.#applied.get(r.domain) ?? 0);
        const entry: ReplicaStatus = {
          domain: r.domain,
          applied,
          lag: Math.max(0, r.lag - (applied - r.applied)),
        };
        if (r.failure !== undefined) entry.failed = describe(r.failure);
        return entry;
      })
      .sort((a, b) => (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0));
    this.#post({ type: 'cluster-status', domains, publishedMessages: this.#publishedMessages() });
  }

  /**
   * Stops following and publishing (after the writer loop ended: nothing is committed any more) and
   * closes the connection; the store's in-flight applies are the caller's to drain.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#postStatus();
    this.#closed = true;
    for (const timer of this.#timers) clearInterval(timer);
    for (const publisher of this.#publishers.values()) publisher.stepDown('disowned');
    for (const replica of this.#replicas.values()) replica.stop();
    await this.#nc.drain().catch(() => undefined);
  }
}

function isDomain(name: string): boolean {
  try {
    validateDomain(name);
    return true;
  } catch {
    return false;
  }
}
