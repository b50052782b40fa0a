import { fromWire, RingStoreError, type WireError } from '../../errors.js';
import { type CommitListener, CommitWatchers } from '../../model/commit-watchers.js';
import { KeyGenerator, parseAggregateId } from '../../model/ids.js';
import { LIMITS } from '../../model/limits.js';
import { eventBytes, validatePutOptions } from '../../model/put-validator.js';
import { validateInstanceRead, validateReadOptions } from '../../model/queries.js';
import type {
  DomainReadResult,
  Durability,
  EventInput,
  GetOptions,
  InstanceEvents,
  PutOptions,
  PutResult,
  ReadOptions,
  StoredEvent,
} from '../../types.js';
import { type Consumer, type ConsumerOptions, consumer } from '../consumer.js';
import {
  CONSUMER_POSITIONS_DOMAIN,
  type ConsumerPosition,
  type ConsumerPositions,
} from '../consumer-positions.js';
import type { AggregateIdInput, EventStore } from '../event-store.js';
import type { InstancePage } from './paging.js';
import type { WirePutResult, WireStoredEvent } from './wire.js';
import { DURABILITY_HEADER, GENERATION_HEADER, wireEventBytes, wireEventMetadata } from './wire.js';

export interface HttpEventStoreOptions {
  /** Bearer token sent with every request. */
  token?: string;
  /** Called once by close(), e.g. to stop a server the caller started for this client. */
  onClose?: () => Promise<void>;
}

/** `data` or `metadata` of an event as base64, by the one rule for event bytes (eventBytes). */
function toBase64(value: unknown, index: number, field: 'data' | 'metadata'): string | undefined {
  if (value === undefined) return undefined;
  const bytes = eventBytes(value, index, field);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function setQuery(
  url: URL,
  name: string,
  value: number | boolean | string | readonly string[] | undefined,
): void {
  if (value === undefined || value === Number.POSITIVE_INFINITY) return;
  url.searchParams.set(name, Array.isArray(value) ? value.join(',') : String(value));
}

/**
 * An EventStore that talks to a ringstore server over HTTP (fetch, keep-alive over loopback). It
 * exists so the contract suite runs through the HTTP API, and as a small client for Node programs.
 *
 * What cannot be synchronous over a network is answered from what this client has seen:
 * `generation` is the highest generation any response reported; `domains()`/`hasDomain()` come from
 * connect()/refresh() plus this client's own successful appends and reads; `newKey()` makes ids
 * locally (they are time-ordered and random-offset, DESIGN.md §1, so no server round trip is
 * needed); `watch()` reports the commits made through this client. Use the SSE route for others'.
 *
 * Data and metadata go up as `dataBase64` and `metadataBase64` (exact bytes) and come back through
 * the read rule of wire.ts.
 */
export class HttpEventStore implements EventStore {
  readonly #base: string;
  readonly #headers: Record<string, string>;
  readonly #onClose: (() => Promise<void>) | undefined;
  readonly #keys = new KeyGenerator();
  readonly #domains = new Set<string>();
  readonly #watchers = new CommitWatchers();
  #generation = 0;
  #closed = false;

  constructor(baseUrl: string, options: HttpEventStoreOptions = {}) {
    this.#base = baseUrl.replace(/\/+$/, '');
    this.#headers = options.token ? { authorization: `Bearer ${options.token}` } : {};
    this.#onClose = options.onClose;
  }

  /** Creates a client and loads the server's domain list and generation. */
  static async connect(baseUrl: string, options: HttpEventStoreOptions = {}): Promise<HttpEventStore> {
    const client = new HttpEventStore(baseUrl, options);
    await client.refresh();
    return client;
  }

  get generation(): number {
    return this.#generation;
  }

  async refresh(): Promise<void> {
    const body = (await this.#request('GET', new URL(`${this.#base}/v1/domains`))).body as {
      domains: string[];
    };
    for (const domain of body.domains) this.#domains.add(domain);
  }

  async put(
    domain: string,
    aggregateType: string,
    id: AggregateIdInput,
    events: readonly EventInput[],
    options: PutOptions = {},
  ): Promise<PutResult> {
    this.#assertOpen();
    // As embedded: a misspelt option is refused here (the server would never see it).
    validatePutOptions(options);
    const url = new URL(`${this.#instancePath(domain, aggregateType, id)}/events`);
    const body = {
      events: events.map((event, index) => ({
        type: event.type,
        dataBase64: toBase64(event.data, index, 'data'),
        metadataBase64: toBase64(event.metadata, index, 'metadata'),
        crc: event.crc,
      })),
      expectedVersion: options.expectedVersion,
      idempotencyKey: options.idempotencyKey,
    };
    const response = await this.#request('POST', url, body);
    const wire = response.body as WirePutResult;
    const result: PutResult = {
      ...wire,
      durability: (response.headers.get(DURABILITY_HEADER) ?? 'fsync') as Durability,
      replayed: response.status === 200,
    };
    this.#domains.add(domain);
    this.#seeGeneration(result.generation);
    if (!result.replayed) this.#watchers.notify({ generation: result.generation, domains: [domain] });
    return result;
  }

  /**
   * Pages through the server's read limit, so a get without a limit returns everything, as
   * embedded; a backward get follows nextVersion downwards the same way.
   */
  async get(
    domain: string,
    aggregateType: string,
    id: AggregateIdInput,
    options: GetOptions = {},
  ): Promise<InstanceEvents> {
    this.#assertOpen();
    validateInstanceRead(options);
    const aggregateId = typeof id === 'bigint' ? id : parseAggregateId(id);
    const wanted = options.limit ?? Number.POSITIVE_INFINITY;
    const events: StoredEvent[] = [];
    let fromVersion = options.fromVersion;
    let version = 0;
    // Each page says where it stopped (nextVersion while more remain, docs/HTTP.md).
    for (;;) {
      const url = new URL(`${this.#instancePath(domain, aggregateType, id)}/events`);
      const page = Math.min(wanted - events.length, LIMITS.maxReadLimit);
      setQuery(url, 'direction', options.direction);
      setQuery(url, 'fromVersion', fromVersion);
      setQuery(url, 'toVersion', options.toVersion);
      setQuery(url, 'limit', page);
      setQuery(url, 'atGeneration', options.atGeneration);
      if (options.verifyCrc) setQuery(url, 'verifyCrc', true);
      const response = await this.#request('GET', url);
      const body = response.body as { version: number; events: WireStoredEvent[] } & InstancePage;
      version = body.version;
      for (const wire of body.events)
        events.push(this.#storedEvent(wire, domain, aggregateType, aggregateId));
      if (body.nextVersion === undefined || events.length >= wanted) break;
      fromVersion = body.nextVersion;
    }
    // A domain holds events once any instance has a version; an empty read says nothing.
    if (version > 0) this.#domains.add(domain);
    return { version, events };
  }

  async read(domain: string, options: ReadOptions = {}): Promise<DomainReadResult> {
    this.#assertOpen();
    validateReadOptions(options);
    const url = new URL(`${this.#base}/v1/domains/${encodeURIComponent(domain)}/events`);
    setQuery(url, 'fromPosition', options.fromPosition);
    setQuery(url, 'limit', options.limit);
    setQuery(url, 'types', options.types);
    setQuery(url, 'fromTime', options.fromTime);
    setQuery(url, 'toTime', options.toTime);
    setQuery(url, 'atGeneration', options.atGeneration);
    if (options.verifyCrc) setQuery(url, 'verifyCrc', true);
    const response = await this.#request('GET', url);
    const body = response.body as { events: WireStoredEvent[]; nextPosition: number };
    // Events, or positions scanned past, prove the domain holds events; an empty read proves nothing.
    if (body.events.length > 0 || body.nextPosition > (options.fromPosition ?? 0)) this.#domains.add(domain);
    return {
      events: body.events.map((wire) =>
        this.#storedEvent(wire, domain, wire.aggregateType as string, BigInt(wire.aggregateId as string)),
      ),
      nextPosition: body.nextPosition,
    };
  }

  /** A consumer's stored position (GET …/consumers/:name): where it resumes, and its version. */
  async consumerPosition(domain: string, name: string): Promise<ConsumerPosition> {
    this.#assertOpen();
    const response = await this.#request('GET', new URL(this.#consumerPath(domain, name)));
    return response.body as ConsumerPosition;
  }

  /**
   * Stores a consumer's position (POST …/consumers/:name/ack): it has handled everything before
   * `nextPosition`. With `expectedVersion`, only if no other position was stored since (else
   * CONSUMER_CONFLICT).
   */
  async ackConsumer(
    domain: string,
    name: string,
    nextPosition: number,
    options: { expectedVersion?: number } = {},
  ): Promise<ConsumerPosition> {
    this.#assertOpen();
    const url = new URL(`${this.#consumerPath(domain, name)}/ack`);
    const response = await this.#request('POST', url, {
      nextPosition,
      expectedVersion: options.expectedVersion,
    });
    const position = response.body as ConsumerPosition;
    // A stored position is an event appended to the positions domain.
    if (position.version > 0) this.#domains.add(CONSUMER_POSITIONS_DOMAIN);
    return position;
  }

  /**
   * A durable consumer that follows `options.domain` through this client (subscribe() over reads)
   * and keeps its position through the consumer routes, so the server stores it.
   */
  consumer(name: string, options: ConsumerOptions): Consumer {
    const positions: ConsumerPositions = {
      load: (consumerName, domain) => this.consumerPosition(domain, consumerName),
      store: (consumerName, domain, nextPosition, expectedVersion) =>
        this.ackConsumer(domain, consumerName, nextPosition, { expectedVersion }),
    };
    return consumer(this, name, options, positions);
  }

  hasDomain(domain: string): boolean {
    return this.#domains.has(domain);
  }

  domains(): string[] {
    return [...this.#domains].sort();
  }

  newKey(): bigint {
    return this.#keys.next();
  }

  watch(listener: CommitListener): () => void {
    return this.#watchers.add(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#watchers.close(this.#generation);
    await this.#onClose?.();
  }

  #assertOpen(): void {
    if (this.#closed) throw new RingStoreError('STORE_CLOSED');
  }

  #instancePath(domain: string, aggregateType: string, id: AggregateIdInput): string {
    return `${this.#base}/v1/domains/${encodeURIComponent(domain)}/aggregates/${encodeURIComponent(aggregateType)}/${encodeURIComponent(String(id))}`;
  }

  #consumerPath(domain: string, name: string): string {
    return `${this.#base}/v1/domains/${encodeURIComponent(domain)}/consumers/${encodeURIComponent(name)}`;
  }

  #seeGeneration(generation: number): void {
    if (generation > this.#generation) this.#generation = generation;
  }

  #storedEvent(
    wire: WireStoredEvent,
    domain: string,
    aggregateType: string,
    aggregateId: bigint,
  ): StoredEvent {
    return {
      domain,
      aggregateType,
      aggregateId,
      version: wire.version,
      position: wire.position,
      generation: wire.generation,
      timestamp: wire.timestamp,
      type: wire.type,
      data: wireEventBytes(wire),
      metadata: wireEventMetadata(wire),
      crc: wire.crc,
    };
  }

  async #request(
    method: 'GET' | 'POST',
    url: URL,
    body?: unknown,
  ): Promise<{ status: number; headers: Headers; body: unknown }> {
    const response = await fetch(url, {
      method,
      headers: body === undefined ? this.#headers : { ...this.#headers, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const generation = Number(response.headers.get(GENERATION_HEADER));
    if (Number.isSafeInteger(generation)) this.#seeGeneration(generation);
    let parsed: unknown;
    try {
      parsed = await response.json();
    } catch {
      // Not ringstore's answer (a proxy's error page, a cut connection): say so by status.
      throw new RingStoreError('INTERNAL', `HTTP ${response.status} without a JSON body`, {
        status: response.status,
      });
    }
    if (response.ok) return { status: response.status, headers: response.headers, body: parsed };
    const error = (parsed as { error?: WireError }).error;
    throw error ? fromWire(error) : new RingStoreError('INTERNAL', `HTTP ${response.status}`);
  }
}
