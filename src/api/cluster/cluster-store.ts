import { randomUUID } from 'node:crypto';
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { crcMismatch, fromWire, RingStoreError, type WireError } from '../../errors.js';
import type { CommitListener } from '../../model/commit-watchers.js';
import type { AggregateIdInput, EventStore } from '../../model/event-store.js';
import { eventCrc } from '../../model/events.js';
import { validateDomain } from '../../model/names.js';
import { PutValidator } from '../../model/put-validator.js';
import { StorageEngine, type StorageEngineOptions } from '../../storage/storage-engine.js';
import type { AppendBatch, AppendEvent } from '../../storage/types.js';
import type {
  DomainReadResult,
  EventInput,
  GetOptions,
  InstanceEvents,
  PutOptions,
  PutResult,
  ReadOptions,
} from '../../types.js';
import type { StoreMetrics } from '../http/metrics.js';
import { DomainOwner } from './domain-owner.js';
import { DomainReplica } from './domain-replica.js';
import { defaultReplicas, ensureDomainStream, openBucket } from './domain-stream.js';
import { decodeGenerationMessage, encodeGenerationMessage } from './generation-message.js';
import { LeaseBook } from './lease-book.js';
import { describe, isNoResponders } from './nats-errors.js';
import { NAMESPACE_PATTERN, NatsNames, NODE_ID_PATTERN } from './nats-names.js';

export interface ClusterOptions {
  /** nats-server client URLs (one or more of the cluster). */
  servers: string | readonly string[];
  /** This node's name: unique in the cluster, [A-Za-z0-9][A-Za-z0-9_-]{0,62}. */
  nodeId: string;
  /** Replicas of each new domain stream (default 3 when the cluster has three or more servers, else 1). */
  replicas?: number;
  /** Prefix of every stream, subject and bucket this cluster uses (default `ringstore`). */
  namespace?: string;
  /** Lease TTL: the lease bucket's max_age when this node creates it (default 10,000 ms). */
  leaseTtlMs?: number;
  /** How long a put may wait for an owner, and an unanswered publish is retried (default 30,000 ms). */
  putTimeoutMs?: number;
}

export interface ClusterStoreOptions extends StorageEngineOptions {
  cluster: ClusterOptions;
}

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
}

const DEFAULT_LEASE_TTL_MS = 10_000;
const DEFAULT_PUT_TIMEOUT_MS = 30_000;
const HEARTBEAT_MS = 1000;
const DISCOVERY_MS = 2000;
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

type PutReply = { ok: true; result: PutResult } | { ok: false; error: WireError };

/**
 * ringstore on a NATS JetStream cluster (docs/CLUSTER.md): this node's own store (StorageEngine, the
 * same on-disk format) follows every domain stream (DomainReplica); the node holding a domain's
 * lease writes it (DomainOwner); a put reaching another node is forwarded to the owner over NATS
 * request/reply, or, when nobody holds the lease, this node takes it. Reads are local.
 */
export class ClusterStore implements EventStore {
  readonly node: string;
  readonly #engine: StorageEngine;
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #leases: LeaseBook;
  readonly #nodes: KV;
  readonly #names: NatsNames;
  readonly #replicas = new Map<string, DomainReplica>();
  readonly #owners = new Map<string, DomainOwner>();
  readonly #serving = new Map<string, Subscription>();
  readonly #becoming = new Map<string, Promise<DomainOwner | undefined>>();
  /** Per domain, the last put on the slow path (lease or forward): the next waits for it to be handed on. */
  readonly #routing = new Map<string, Promise<void>>();
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #streamReplicas: number;
  readonly #maxPayload: number;
  readonly #putTimeoutMs: number;
  readonly #clock: () => number;
  readonly #validator = new PutValidator();
  #closed = false;
  #fenced = 0;
  #forwarded = 0;
  /** Messages published by owners this node has stepped down from. */
  #published = 0;

  private constructor(
    node: string,
    engine: StorageEngine,
    nc: NatsConnection,
    js: JetStreamClient,
    jsm: JetStreamManager,
    leases: KV,
    nodes: KV,
    leaseTtlMs: number,
    options: ClusterOptions,
    names: NatsNames,
    clock: () => number,
  ) {
    this.#clock = clock;
    this.node = node;
    this.#names = names;
    this.#engine = engine;
    this.#nc = nc;
    this.#js = js;
    this.#jsm = jsm;
    this.#nodes = nodes;
    this.#leases = new LeaseBook(leases, node, leaseTtlMs, (domain, reason) =>
      this.#leaseLost(domain, reason),
    );
    const servers = Math.max(1, nc.info?.connect_urls?.length ?? 1);
    this.#streamReplicas = options.replicas ?? defaultReplicas(servers);
    this.#maxPayload = nc.info?.max_payload ?? 1024 * 1024;
    this.#putTimeoutMs = options.putTimeoutMs ?? DEFAULT_PUT_TIMEOUT_MS;
  }

  /** Connects to NATS, opens the local store in `dir` and starts following every domain stream. */
  static async open(dir: string, options: ClusterStoreOptions): Promise<ClusterStore> {
    const cluster = checkClusterOptions(options.cluster);
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: typeof cluster.servers === 'string' ? cluster.servers.split(',') : [...cluster.servers],
        name: `ringstore-${cluster.nodeId}`,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        timeout: 5000,
      });
    } catch (err) {
      throw new RingStoreError('CLUSTER_UNAVAILABLE', `cannot connect to NATS: ${describe(err)}`);
    }
    let engine: StorageEngine | undefined;
    try {
      const jsm = await jetstreamManager(nc, { timeout: 5000 });
      const js = jetstream(nc, { timeout: 5000 });
      const servers = Math.max(1, nc.info?.connect_urls?.length ?? 1);
      const bucketReplicas = Math.min(cluster.replicas ?? 3, defaultReplicas(servers));
      const names = new NatsNames(cluster.namespace);
      const kvm = new Kvm(js);
      const ttl = cluster.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
      const leases = await openBucket(kvm, names.leaseBucket, { ttl, history: 1, replicas: bucketReplicas });
      const leaseTtlMs = (await leases.status()).ttl || ttl;
      const nodes = await openBucket(kvm, names.nodeBucket, {
        ttl: 10 * HEARTBEAT_MS,
        history: 1,
        replicas: bucketReplicas,
      });
      engine = StorageEngine.open(dir, options);
      const store = new ClusterStore(
        cluster.nodeId,
        engine,
        nc,
        js,
        jsm,
        leases,
        nodes,
        leaseTtlMs,
        cluster,
        names,
        options.clock ?? Date.now,
      );
      await store.#start();
      return store;
    } catch (err) {
      await engine?.close().catch(() => undefined);
      await nc.close().catch(() => undefined);
      if (err instanceof RingStoreError) throw err;
      throw new RingStoreError('CLUSTER_UNAVAILABLE', `cannot open the cluster: ${describe(err)}`);
    }
  }

  async #start(): Promise<void> {
    const notices = this.#nc.subscribe(this.#names.domains, {
      callback: (_err, msg) => {
        const domain = utf8Decoder.decode(msg.data);
        if (this.#isDomain(domain)) this.#follow(domain);
      },
    });
    void notices;
    await this.#discover();
    const discovery = setInterval(() => void this.#discover().catch(() => undefined), DISCOVERY_MS);
    const heartbeat = setInterval(() => void this.#heartbeat().catch(() => undefined), HEARTBEAT_MS);
    discovery.unref();
    heartbeat.unref();
    this.#timers.push(discovery, heartbeat);
    await this.#heartbeat().catch(() => undefined);
  }

  get generation(): number {
    return this.#engine.generation;
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
    const deadline = performance.now() + this.#putTimeoutMs;
    let lastRefusal: RingStoreError | undefined;
    for (let attempt = 0; ; attempt++) {
      this.#assertOpen();
      try {
        return await this.#route(batch);
      } catch (err) {
        // NOT_OWNER means: never published; the next attempt may find (or become) the owner.
        if (!(err instanceof RingStoreError && err.code === 'NOT_OWNER')) throw err;
        lastRefusal = err;
      }
      if (performance.now() > deadline) throw lastRefusal;
      await new Promise((r) => setTimeout(r, Math.min(500, 50 * 2 ** attempt)));
    }
  }

  /**
   * One attempt: the local owner, else take the lease, else the owner over NATS. Puts of a domain
   * reach their owner in the order they were made: while one waits for the lease or is being
   * forwarded, the ones after it queue behind it (#routing) until it has been handed on.
   */
  async #route(batch: AppendBatch): Promise<PutResult> {
    const domain = batch.domain;
    const local = this.#owners.get(domain);
    if (local?.active && !this.#routing.has(domain)) return this.#submit(local, batch);
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
      const owner = this.#owners.get(domain)?.active
        ? this.#owners.get(domain)!
        : await this.#becomeOwner(domain);
      if (owner) {
        const result = this.#submit(owner, batch);
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

  #submit(owner: DomainOwner, batch: AppendBatch): Promise<PutResult> {
    return new Promise((resolve, reject) => owner.submit({ batch, resolve, reject }));
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
        timeout: this.#putTimeoutMs,
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

  /** Takes the domain's lease when nobody holds it and starts writing it; undefined when held elsewhere. */
  #becomeOwner(domain: string): Promise<DomainOwner | undefined> {
    const pending = this.#becoming.get(domain);
    if (pending) return pending;
    const attempt = (async () => {
      if (!(await this.#leases.take(domain))) return undefined;
      try {
        await this.#ensureStream(domain);
        const replica = this.#follow(domain);
        const owner = await DomainOwner.start(
          domain,
          this.#engine,
          replica,
          this.#js,
          this.#leases,
          this.#names,
          {
            node: this.node,
            maxMessageBytes: this.#maxPayload,
            publishTimeoutMs: this.#putTimeoutMs,
            onStepDown: (d, reason) => this.#stepDown(d, reason),
            onFenced: () => void this.#fenced++,
            clock: this.#clock,
          },
        );
        this.#owners.set(domain, owner);
        this.#serve(domain, owner);
        return owner;
      } catch (err) {
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

  /** Answers puts forwarded by other nodes while this node owns the domain. */
  #serve(domain: string, owner: DomainOwner): void {
    const sub = this.#nc.subscribe(this.#names.puts(domain), {
      callback: (_err, msg) => {
        let batch: AppendBatch;
        try {
          const decoded = decodeGenerationMessage(msg.data);
          batch = decoded.batches[0]!;
          if (decoded.batches.length !== 1 || batch.domain !== domain)
            throw new RingStoreError('BAD_REQUEST');
        } catch (err) {
          msg.respond(replyBytes({ ok: false, error: asRingStoreError(err).toWire() }));
          return;
        }
        const respond = (reply: PutReply) => {
          msg.respond(replyBytes(reply));
        };
        owner.submit({
          batch,
          resolve: (result) => respond({ ok: true, result }),
          reject: (err) => respond({ ok: false, error: asRingStoreError(err).toWire() }),
        });
      },
    });
    this.#serving.set(domain, sub);
  }

  #stepDown(domain: string, reason: string): void {
    this.#published += this.#owners.get(domain)?.published ?? 0;
    this.#serving.get(domain)?.unsubscribe();
    this.#serving.delete(domain);
    this.#owners.delete(domain);
    void reason;
    void this.#leases.release(domain);
  }

  #leaseLost(domain: string, reason: string): void {
    this.#owners.get(domain)?.stepDown(`the lease was lost (${reason})`);
  }

  async #ensureStream(domain: string): Promise<void> {
    await ensureDomainStream(this.#jsm, this.#names, domain, this.#streamReplicas);
    this.#nc.publish(this.#names.domains, utf8.encode(domain));
  }

  #isDomain(name: string): boolean {
    try {
      validateDomain(name);
      return true;
    } catch {
      return false;
    }
  }

  /** Starts following a domain stream (once). */
  #follow(domain: string): DomainReplica {
    let replica = this.#replicas.get(domain);
    if (!replica) {
      replica = new DomainReplica(domain, this.#engine, this.#js, this.#jsm, this.#names);
      this.#replicas.set(domain, replica);
      if (!this.#closed) replica.start();
    }
    return replica;
  }

  async #discover(): Promise<void> {
    const names = this.#jsm.streams.names();
    for await (const name of names) {
      const domain = this.#names.domainOfStream(name);
      if (domain !== undefined && this.#isDomain(domain)) this.#follow(domain);
    }
    await Promise.all([...this.#replicas.values()].map((r) => r.watch().catch(() => undefined)));
  }

  async #heartbeat(): Promise<void> {
    if (this.#closed) return;
    await this.#nodes.put(this.node, utf8.encode(JSON.stringify(this.status())));
  }

  /** This node's view: per domain what it applied, its lag and whether it owns it; lease counters. */
  status(): ClusterNodeStatus {
    const domains: ClusterDomainStatus[] = [...this.#replicas.values()]
      .map((r) => {
        const entry: ClusterDomainStatus = {
          domain: r.domain,
          applied: r.applied,
          lag: r.lag,
          owner: this.#owners.get(r.domain)?.active === true,
        };
        if (r.failure !== undefined) entry.failed = describe(r.failure);
        return entry;
      })
      .sort((a, b) => (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0));
    return {
      node: this.node,
      at: Date.now(),
      domains,
      leasesTaken: this.#leases.taken,
      leasesLost: this.#leases.lost,
      fencedPublishes: this.#fenced,
      forwardedPuts: this.#forwarded,
      publishedMessages:
        this.#published + [...this.#owners.values()].reduce((sum, o) => sum + o.published, 0),
    };
  }

  /** For /metrics (src/api/http/metrics.ts): the cluster view and the local store's caches. */
  metrics(): StoreMetrics {
    const status = this.status();
    return {
      caches: this.#engine.cacheStats(),
      cluster: {
        leasesTaken: status.leasesTaken,
        leasesLost: status.leasesLost,
        fencedPublishes: status.fencedPublishes,
        forwardedPuts: status.forwardedPuts,
        domains: status.domains,
      },
    };
  }

  /**
   * Resolves once this node has applied the domain up to `position` (an event's position, as a put
   * returned it): read-your-writes on a node other than the one that wrote.
   */
  async waitForPosition(domain: string, position: number, timeoutMs = 10_000): Promise<void> {
    this.#assertOpen();
    validateDomain(domain);
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
        this.#holds(domain, position).then(
          (held) => held && settle(),
          (err: unknown) => settle(err),
        );
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

  /** True once reads on this node see `position` (a commit still syncing is not visible yet). */
  async #holds(domain: string, position: number): Promise<boolean> {
    const { events } = await this.#engine.read(domain, { fromPosition: position, limit: 1 });
    return events.length > 0;
  }

  async get(
    domain: string,
    aggregateType: string,
    id: AggregateIdInput,
    options?: GetOptions,
  ): Promise<InstanceEvents> {
    return this.#engine.get(domain, aggregateType, id, options);
  }

  async read(domain: string, options?: ReadOptions): Promise<DomainReadResult> {
    return this.#engine.read(domain, options);
  }

  hasDomain(domain: string): boolean {
    return this.#engine.hasDomain(domain);
  }

  domains(): string[] {
    return this.#engine.domains();
  }

  newKey(): bigint {
    return this.#engine.newKey();
  }

  watch(listener: CommitListener): () => void {
    return this.#engine.watch(listener);
  }

  get failed(): boolean {
    return this.#engine.failed;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of this.#timers) clearInterval(timer);
    for (const owner of [...this.#owners.values()]) owner.stepDown('the node is closing');
    for (const sub of this.#serving.values()) sub.unsubscribe();
    this.#serving.clear();
    await this.#leases.close();
    await this.#nodes.delete(this.node).catch(() => undefined);
    for (const replica of this.#replicas.values()) replica.stop();
    await this.#nc.drain().catch(() => undefined);
    await this.#engine.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new RingStoreError('STORE_CLOSED');
  }
}

function checkClusterOptions(options: ClusterOptions): ClusterOptions {
  const bad = (option: string, message: string) => new RingStoreError('INVALID_OPTION', message, { option });
  if (typeof options !== 'object' || options === null)
    throw bad('cluster', 'cluster options must be an object');
  const servers = typeof options.servers === 'string' ? options.servers.split(',') : options.servers;
  if (
    !Array.isArray(servers) ||
    servers.length === 0 ||
    servers.some((s) => typeof s !== 'string' || s === '')
  ) {
    throw bad('servers', 'cluster.servers must name at least one nats-server URL');
  }
  if (typeof options.nodeId !== 'string' || !NODE_ID_PATTERN.test(options.nodeId)) {
    throw bad('nodeId', 'cluster.nodeId must match [A-Za-z0-9][A-Za-z0-9_-]{0,62}');
  }
  if (
    options.namespace !== undefined &&
    !(typeof options.namespace === 'string' && NAMESPACE_PATTERN.test(options.namespace))
  ) {
    throw bad('namespace', 'cluster.namespace must match [A-Za-z0-9][A-Za-z0-9_-]{0,31}');
  }
  if (
    options.replicas !== undefined &&
    !(Number.isInteger(options.replicas) && options.replicas >= 1 && options.replicas <= 5)
  ) {
    throw bad('replicas', 'cluster.replicas must be an integer from 1 to 5');
  }
  for (const name of ['leaseTtlMs', 'putTimeoutMs'] as const) {
    const value = options[name];
    if (value !== undefined && !(Number.isInteger(value) && value >= 100)) {
      throw bad(name, `cluster.${name} must be an integer >= 100`);
    }
  }
  return options;
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

function replyBytes(reply: PutReply): Uint8Array {
  return utf8.encode(JSON.stringify(reply));
}
