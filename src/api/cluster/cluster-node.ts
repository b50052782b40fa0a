import { randomUUID } from 'node:crypto';
import type { JetStreamManager } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { crcMismatch, fromWire, RingStoreError, type WireError } from '../../errors.js';
import type { CommitListener } from '../../model/commit-watchers.js';
import type { AggregateIdInput, EventStore } from '../../model/event-store.js';
import { eventCrc } from '../../model/events.js';
import { validateDomain } from '../../model/names.js';
import { PutValidator } from '../../model/put-validator.js';
import type { ValidReadOptions } from '../../model/queries.js';
import { validateReadOptions } from '../../model/queries.js';
import { connectJetStream } from '../../pipeline/cluster/jetstream-connection.js';
import { describe, isNoResponders } from '../../pipeline/cluster/nats-errors.js';
import { NatsNames } from '../../pipeline/cluster/nats-names.js';
import type { ClusterWriterMessage, ReplicaStatus } from '../../pipeline/cluster/writer-node.js';
import { decodeGenerationMessage, encodeGenerationMessage } from '../../storage/generation-message.js';
import type { AppendBatch, AppendEvent } from '../../storage/types.js';
import type { DomainReadResult, EventInput, PutOptions, PutResult } from '../../types.js';
import type { WriterControlMessage } from '../../workers/writer-protocol.js';
import type { ClusterMetrics } from '../http/metrics.js';
import type { ResolvedClusterOptions } from './cluster-options.js';
import { defaultReplicas, ensureDomainStream, openBucket } from './domain-stream.js';
import { LeaseBook } from './lease-book.js';
import { PutRetry } from './put-retry.js';

/** One domain as this node sees it (`ringstore cluster status`, metrics). */
export interface ClusterDomainStatus {
  domain: string;
  /** The last stream sequence (= generation) this node applied. */
  applied: number;
  /** Messages of the stream this node has not applied yet (its consumer's count). */
  lag: number;
  owner: boolean;
  failed?: string;
}

export interface ClusterNodeStatus {
  node: string;
  at: number;
  domains: ClusterDomainStatus[];
  leasesTaken: number;
  leasesLost: number;
  fencedPublishes: number;
  forwardedPuts: number;
  /** JetStream messages (generations) this node published since open. */
  publishedMessages: number;
  /** Puts with an idempotency key routed again after their outcome was unknown (CLUSTER_UNAVAILABLE). */
  unknownOutcomeRetries: number;
}

/** What the cluster side needs of the store's engine (RingEngine): the ring, the writer, the reader. */
export interface ClusterEngine extends Pick<EventStore, 'put'> {
  read(domain: string, options: ValidReadOptions): DomainReadResult;
  watch(listener: CommitListener): () => void;
  onCluster(listener: (message: ClusterWriterMessage) => void): void;
  control(message: WriterControlMessage): void;
  /** True once the store failed (its writer thread writes nothing more). */
  readonly failed: boolean;
}

const HEARTBEAT_MS = 1000;
/** How long past putTimeoutMs the writer thread may take to answer 'own'. */
const OWN_GRACE_MS = 5000;
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

type PutReply = { ok: true; result: PutResult } | { ok: false; error: WireError };

/**
 * The main thread's part of a cluster node (docs/CLUSTER.md), beside RingStore's engine: domain
 * leases (LeaseBook), routing and forwarding of puts, answering puts other nodes forward, the
 * heartbeat and status, read-your-writes waits. The writer thread's part (ClusterWriterNode)
 * publishes and applies; this side asks it to start writing a domain once it holds the lease.
 *
 *   put ── validate ── this node writes the domain? ── into the ring (the writer publishes it)
 *                      nobody holds the lease?      ── take it, the writer catches up, into the ring
 *                      another node holds it        ── NATS request <namespace>.put.<domain> to it
 *
 * A put the writer refuses with NOT_OWNER (it stepped down: fenced, or the lease was lost) was never
 * published: it is routed again until `putTimeoutMs`.
 */
export class ClusterNode {
  readonly node: string;
  readonly #engine: ClusterEngine;
  readonly #nc: NatsConnection;
  readonly #jsm: JetStreamManager;
  readonly #leases: LeaseBook;
  readonly #nodes: KV;
  readonly #names: NatsNames;
  readonly #options: ResolvedClusterOptions;
  readonly #streamReplicas: number;
  /** Domains whose lease this node holds and whose publisher runs on the writer thread. */
  readonly #owned = new Set<string>();
  readonly #serving = new Map<string, Subscription>();
  readonly #becoming = new Map<string, Promise<boolean>>();
  readonly #owning = new Map<
    string,
    { request: number; resolve: () => void; reject: (err: unknown) => void }
  >();
  /**
   * The number of the last request sent to the writer thread: one sequence for every domain, so a
   * number is never used twice and a domain's entry below can go when its lease does.
   */
  #lastRequest = 0;
  /** Per domain whose lease this node holds or is taking, the number of its last 'own' request. */
  readonly #ownRequests = new Map<string, number>();
  /** Per domain, the last put on the slow path (lease or forward): the next waits for it to be handed on. */
  readonly #routing = new Map<string, Promise<void>>();
  readonly #validator = new PutValidator();
  readonly #timers: NodeJS.Timeout[] = [];
  /** The writer thread's latest status of each domain it follows. */
  readonly #replicas = new Map<string, ReplicaStatus>();
  #publishedMessages = 0;
  #fenced = 0;
  #forwarded = 0;
  /** Keyed puts routed again after an unknown outcome (CLUSTER_UNAVAILABLE). */
  #unknownRetries = 0;
  /** Forwarded puts taken into the ring and not yet answered. */
  readonly #served = new Set<Promise<void>>();
  #closed = false;

  private constructor(
    engine: ClusterEngine,
    nc: NatsConnection,
    jsm: JetStreamManager,
    leases: KV,
    nodes: KV,
    leaseTtlMs: number,
    options: ResolvedClusterOptions,
  ) {
    this.node = options.nodeId;
    this.#engine = engine;
    this.#nc = nc;
    this.#jsm = jsm;
    this.#nodes = nodes;
    this.#options = options;
    this.#names = new NatsNames(options.namespace);
    this.#leases = new LeaseBook(leases, options.nodeId, leaseTtlMs, (domain, reason) =>
      this.#leaseLost(domain, reason),
    );
    const servers = Math.max(1, nc.info?.connect_urls?.length ?? 1);
    this.#streamReplicas = options.replicas ?? defaultReplicas(servers);
  }

  /** Connects to NATS, opens the lease and node buckets and lets the writer thread start following. */
  static async start(engine: ClusterEngine, options: ResolvedClusterOptions): Promise<ClusterNode> {
    const { nc, js, jsm } = await connectJetStream(options.servers, `ringstore-${options.nodeId}`);
    try {
      const servers = Math.max(1, nc.info?.connect_urls?.length ?? 1);
      const bucketReplicas = Math.min(options.replicas ?? 3, defaultReplicas(servers));
      const names = new NatsNames(options.namespace);
      const kvm = new Kvm(js);
      const ttl = options.leaseTtlMs;
      const { kv: leases, ttl: leaseTtlMs } = await openBucket(kvm, names.leaseBucket, {
        ttl,
        history: 1,
        replicas: bucketReplicas,
      });
      const { kv: nodes } = await openBucket(kvm, names.nodeBucket, {
        ttl: 10 * HEARTBEAT_MS,
        history: 1,
        replicas: bucketReplicas,
      });
      const node = new ClusterNode(engine, nc, jsm, leases, nodes, leaseTtlMs, options);
      engine.onCluster((message) => node.#onWriter(message));
      engine.control({ type: 'follow' });
      const heartbeat = setInterval(() => void node.#heartbeat().catch(() => undefined), HEARTBEAT_MS);
      heartbeat.unref();
      node.#timers.push(heartbeat);
      await node.#heartbeat().catch(() => undefined);
      return node;
    } catch (err) {
      await nc.close().catch(() => undefined);
      if (err instanceof RingStoreError) throw err;
      throw new RingStoreError('CLUSTER_UNAVAILABLE', `cannot open the cluster: ${describe(err)}`);
    }
  }

  async put(
    domain: string,
    aggregateType: string,
    id: AggregateIdInput,
    events: readonly EventInput[],
    options?: PutOptions,
  ): Promise<PutResult> {
    this.#assertOpen();
    const batch = toBatch(this.#validator, domain, aggregateType, id, events, options);
    const retry = new PutRetry(
      batch.idempotencyKey !== undefined,
      this.#options.putTimeoutMs,
      performance.now(),
    );
    for (let attempt = 0; ; attempt++) {
      this.#assertOpen();
      try {
        return await this.#route(batch);
      } catch (err) {
        if (!retry.again(err, performance.now())) throw retry.answer(err);
        if (err instanceof RingStoreError && err.code === 'CLUSTER_UNAVAILABLE') this.#unknownRetries++;
      }
      await new Promise((r) => setTimeout(r, Math.min(500, 50 * 2 ** attempt)));
    }
  }

  /**
   * One attempt: into the ring when this node writes the domain, else take the lease, else the
   * owner over NATS. Puts of a domain reach their writer in the order they were made: while one
   * waits for the lease or is being forwarded, the ones after it queue behind it (#routing) until
   * it has been handed on.
   */
  async #route(batch: AppendBatch): Promise<PutResult> {
    const domain = batch.domain;
    if (this.#owned.has(domain) && this.#leases.holds(domain) && !this.#routing.has(domain)) {
      return this.#intoRing(batch);
    }
    const before = this.#routing.get(domain);
    let handedOn!: () => void;
    const mine = new Promise<void>((resolve) => {
      handedOn = resolve;
    });
    const chain = (before ?? Promise.resolve()).then(() => mine);
    this.#routing.set(domain, chain);
    const done = () => {
      handedOn();
      if (this.#routing.get(domain) === chain) this.#routing.delete(domain);
    };
    try {
      await before;
      if (await this.#writes(domain)) {
        const result = this.#intoRing(batch);
        done();
        return await result;
      }
      const forwarded = this.#forward(batch);
      // The request is on the wire (NATS keeps a connection's order): the next put may go.
      done();
      return await forwarded;
    } finally {
      done();
    }
  }

  /** True when this node writes the domain now: it holds (or renewed, or took) the lease. */
  async #writes(domain: string): Promise<boolean> {
    if (this.#owned.has(domain)) {
      if (this.#leases.holds(domain) || (await this.#leases.renew(domain))) return true;
      // The renewal failed: the lease is lost (#leaseLost ran); someone else may hold it now.
    }
    return this.#becomeOwner(domain);
  }

  /** A validated batch into this node's ring: the writer thread publishes and applies it. */
  #intoRing(batch: AppendBatch): Promise<PutResult> {
    const events = batch.events as readonly AppendEvent[];
    const options: PutOptions = { expectedVersion: batch.expectedVersion };
    if (batch.idempotencyKey !== undefined) options.idempotencyKey = batch.idempotencyKey;
    return this.#engine.put(batch.domain, batch.aggregateType, batch.aggregateId, events, options);
  }

  async #forward(batch: AppendBatch): Promise<PutResult> {
    const request = encodeGenerationMessage({
      domain: batch.domain,
      node: this.node,
      id: randomUUID(),
      timestamp: 0,
      batches: [batch],
    });
    let reply: PutReply;
    try {
      const msg = await this.#nc.request(this.#names.puts(batch.domain), request, {
        timeout: this.#options.putTimeoutMs,
      });
      reply = JSON.parse(utf8Decoder.decode(msg.data)) as PutReply;
    } catch (err) {
      if (isNoResponders(err)) {
        throw new RingStoreError('NOT_OWNER', `domain ${batch.domain}: its owner does not answer`, {
          domain: batch.domain,
        });
      }
      throw new RingStoreError(
        'CLUSTER_UNAVAILABLE',
        `domain ${batch.domain}: the owner did not answer a forwarded put (${describe(err)}); retry with the same idempotency key`,
        { domain: batch.domain },
      );
    }
    this.#forwarded++;
    if (reply.ok) return reply.result;
    throw fromWire(reply.error);
  }

  /**
   * Takes the domain's lease when nobody holds it, creates its stream when missing, and has the
   * writer thread catch up and start writing it; false when another node holds the lease.
   */
  #becomeOwner(domain: string): Promise<boolean> {
    const pending = this.#becoming.get(domain);
    if (pending) return pending;
    const attempt = (async () => {
      // A failed store would hold the lease without ever writing: leave the domain to other nodes.
      if (this.#engine.failed) throw new RingStoreError('STORE_FAILED');
      if (!(await this.#leases.take(domain))) return false;
      try {
        await ensureDomainStream(this.#jsm, this.#names, domain, this.#streamReplicas);
        this.#nc.publish(this.#names.domains, utf8.encode(domain));
        await new Promise<void>((resolve, reject) => {
          // The writer catches up within putTimeoutMs or answers 'own-failed'; this bounds a writer
          // thread that cannot answer at all (the store failed).
          const timer = setTimeout(
            () => reject(new Error('the writer thread did not start writing in time')),
            this.#options.putTimeoutMs + OWN_GRACE_MS,
          );
          const settle = () => clearTimeout(timer);
          const request = this.#control('own', domain);
          this.#owning.set(domain, {
            request,
            resolve: () => {
              settle();
              resolve();
            },
            reject: (err) => {
              settle();
              reject(err);
            },
          });
        });
        if (!this.#leases.holds(domain)) throw new Error('the lease expired while catching up');
        this.#owned.add(domain);
        this.#serve(domain);
        return true;
      } catch (err) {
        this.#owning.delete(domain);
        this.#control('disown', domain);
        await this.#leases.release(domain);
        throw new RingStoreError(
          'NOT_OWNER',
          `domain ${domain}: could not start writing (${describe(err)})`,
          {
            domain,
          },
        );
      }
    })();
    this.#becoming.set(domain, attempt);
    return attempt.finally(() => this.#becoming.delete(domain));
  }

  /** Answers puts forwarded by other nodes while this node writes the domain: through the ring. */
  #serve(domain: string): void {
    if (this.#serving.has(domain)) return;
    const sub = this.#nc.subscribe(this.#names.puts(domain), {
      callback: (_err, msg) => {
        const respond = (reply: PutReply) => {
          try {
            msg.respond(utf8.encode(JSON.stringify(reply)));
          } catch {
            // The connection is closing: the forwarder's request times out and it treats the put's
            // outcome as unknown (CLUSTER_UNAVAILABLE), which it is from there.
          }
        };
        let batch: AppendBatch;
        try {
          const decoded = decodeGenerationMessage(msg.data);
          batch = decoded.batches[0]!;
          if (decoded.batches.length !== 1 || batch.domain !== domain)
            throw new RingStoreError('BAD_REQUEST');
        } catch (err) {
          respond({ ok: false, error: asRingStoreError(err).toWire() });
          return;
        }
        const served = this.#intoRing(batch)
          .then(
            (result) => respond({ ok: true, result }),
            (err: unknown) => respond({ ok: false, error: asRingStoreError(err).toWire() }),
          )
          .finally(() => this.#served.delete(served));
        this.#served.add(served);
      },
    });
    this.#serving.set(domain, sub);
  }

  /** This node no longer writes the domain: stop answering its forwarded puts. */
  #unserve(domain: string): void {
    this.#owned.delete(domain);
    this.#serving.get(domain)?.unsubscribe();
    this.#serving.delete(domain);
  }

  /** Sends the writer thread a numbered request about a domain; returns its number. */
  #control(type: 'own' | 'disown', domain: string): number {
    const request = ++this.#lastRequest;
    // After a 'disown', any step-down still on its way answers an earlier 'own': stale.
    if (type === 'own') this.#ownRequests.set(domain, request);
    else this.#ownRequests.delete(domain);
    this.#engine.control({ type, domain, request });
    return request;
  }

  #leaseLost(domain: string, reason: string): void {
    this.#unserve(domain);
    // A writer still catching up for this lease may never answer now (it drops a superseded
    // request): the wait for it ends here instead of at its timeout.
    const waiter = this.#owning.get(domain);
    this.#owning.delete(domain);
    waiter?.reject(new Error(`the lease was lost while the writer caught up (${reason})`));
    this.#control('disown', domain);
  }

  #onWriter(message: ClusterWriterMessage): void {
    switch (message.type) {
      case 'owning':
      case 'own-failed': {
        // An answer to an earlier request than the one waited for is stale: it changes nothing.
        const waiter = this.#owning.get(message.domain);
        if (waiter?.request !== message.request) return;
        this.#owning.delete(message.domain);
        if (message.type === 'owning') waiter.resolve();
        else waiter.reject(fromWire(message.error));
        return;
      }
      case 'stepped-down':
        // Fenced, or a publish went unanswered: someone else may write now; the lease goes. A
        // publisher of an earlier 'own' than the last one says nothing about the lease held now.
        if (message.reason === 'fenced') this.#fenced++;
        if (message.request !== this.#ownRequests.get(message.domain)) return;
        this.#ownRequests.delete(message.domain);
        this.#unserve(message.domain);
        void this.#leases.release(message.domain);
        return;
      case 'replicated':
        // Applied here now: the status says so before any read can see it.
        for (const { domain } of message.delta.domains) {
          const entry = this.#replicas.get(domain) ?? { domain, applied: 0, lag: 0 };
          const ahead = Math.max(0, message.generation - entry.applied);
          this.#replicas.set(domain, {
            ...entry,
            applied: entry.applied + ahead,
            lag: Math.max(0, entry.lag - ahead),
          });
        }
        return;
      case 'published':
        this.#publishedMessages = message.publishedMessages;
        return;
      case 'cluster-status':
        this.#replicas.clear();
        for (const entry of message.domains) this.#replicas.set(entry.domain, entry);
        this.#publishedMessages = message.publishedMessages;
        return;
      default:
        return;
    }
  }

  async #heartbeat(): Promise<void> {
    if (this.#closed) return;
    await this.#nodes.put(this.node, utf8.encode(JSON.stringify(this.status())));
  }

  /** This node's view: per domain what it applied, its lag and whether it writes it; lease counters. */
  status(): ClusterNodeStatus {
    const domains: ClusterDomainStatus[] = [...this.#replicas.values()].map((r) => ({
      ...r,
      owner: this.#owned.has(r.domain),
    }));
    for (const domain of this.#owned) {
      if (!domains.some((d) => d.domain === domain))
        domains.push({ domain, applied: 0, lag: 0, owner: true });
    }
    domains.sort((a, b) => (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0));
    return {
      node: this.node,
      at: Date.now(),
      domains,
      leasesTaken: this.#leases.taken,
      leasesLost: this.#leases.lost,
      fencedPublishes: this.#fenced,
      forwardedPuts: this.#forwarded,
      publishedMessages: this.#publishedMessages,
      unknownOutcomeRetries: this.#unknownRetries,
    };
  }

  /** For /metrics (src/api/http/metrics.ts). */
  metrics(): ClusterMetrics {
    const status = this.status();
    return {
      leasesTaken: status.leasesTaken,
      leasesLost: status.leasesLost,
      fencedPublishes: status.fencedPublishes,
      forwardedPuts: status.forwardedPuts,
      domains: status.domains,
    };
  }

  /**
   * Resolves once this node has applied the domain up to `position` (an event's position, as a put
   * returned it): read-your-writes on a node other than the one that wrote.
   */
  async waitForPosition(domain: string, position: number, timeoutMs = 10_000): Promise<void> {
    this.#assertOpen();
    validateDomain(domain);
    const probe = validateReadOptions({ fromPosition: position, limit: 1 });
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (err?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        stop();
        if (err) reject(err);
        else resolve();
      };
      const check = () => {
        try {
          if (this.#engine.read(domain, probe).events.length > 0) settle();
        } catch (err) {
          settle(err);
        }
      };
      const timer = setTimeout(
        () =>
          settle(
            new RingStoreError(
              'APPLY_TIMEOUT',
              `domain ${domain}: position ${position} not applied within ${timeoutMs} ms`,
              { domain, position },
            ),
          ),
        timeoutMs,
      );
      const stop = this.#engine.watch((notice) => {
        if (notice.closed) settle(new RingStoreError('STORE_CLOSED'));
        else if (notice.domains.includes(domain)) check();
      });
      // Checked only once the watch is in place: a commit that lands while the read runs notifies
      // the watch, so the last one before the position is reached cannot slip between the two.
      check();
    });
  }

  /** Gives up every lease (another node takes over at once) and leaves NATS; the engine closes next. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of this.#timers) clearInterval(timer);
    for (const domain of [...this.#owned]) {
      this.#unserve(domain);
      this.#control('disown', domain);
    }
    for (const sub of this.#serving.values()) sub.unsubscribe();
    this.#serving.clear();
    // Forwarded puts already in the ring are answered before the connection drains.
    await Promise.allSettled([...this.#served]);
    const closed = new RingStoreError('STORE_CLOSED');
    for (const waiter of this.#owning.values()) waiter.reject(closed);
    this.#owning.clear();
    await this.#leases.close();
    await this.#nodes.delete(this.node).catch(() => undefined);
    await this.#nc.drain().catch(() => undefined);
  }

  #assertOpen(): void {
    if (this.#closed) throw new RingStoreError('STORE_CLOSED');
  }
}

/** Validates a put as every store does (PutValidator) and turns it into the storage layer's batch. */
function toBatch(
  validator: PutValidator,
  domain: string,
  aggregateType: string,
  id: AggregateIdInput,
  events: readonly EventInput[],
  options: PutOptions | undefined,
): AppendBatch {
  const valid = validator.put(domain, aggregateType, id, events, options);
  const appendEvents: AppendEvent[] = new Array(valid.events.length);
  for (let i = 0; i < valid.events.length; i++) {
    const event = valid.events[i]!;
    const crc = eventCrc(event);
    if (event.crc !== undefined && event.crc !== crc) throw crcMismatch(i);
    appendEvents[i] = { type: event.type, data: event.data, metadata: event.metadata, crc };
  }
  return {
    domain: valid.domain,
    aggregateType: valid.aggregateType,
    aggregateId: valid.aggregateId,
    expectedVersion: valid.expectedVersion,
    idempotencyKey: valid.idempotencyKey,
    events: appendEvents,
  };
}

function asRingStoreError(err: unknown): RingStoreError {
  return err instanceof RingStoreError
    ? err
    : new RingStoreError('INTERNAL', err instanceof Error ? err.message : String(err));
}
