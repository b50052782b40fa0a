import { RingStoreError } from '../errors.js';
import { parseAggregateId } from '../model/ids.js';
import { rejectUnknownOptions } from '../model/known-options.js';
import { LIMITS } from '../model/limits.js';
import { validateAggregateType, validateDomain } from '../model/names.js';
import { validateGetOptions, validateReadOptions } from '../model/queries.js';
import type { StoredEvent } from '../types.js';
import type { AggregateIdInput, EventStore } from './event-store.js';

/**
 * Streaming reads: async iterators that fetch a domain log or an instance page by page through
 * store.read / store.get, so a scan of millions of events holds at most one page in memory.
 *
 * By default a stream is pinned to the generation the store had committed when the stream was
 * created (`store.generation`), so a long scan is one consistent cut: events committed while it
 * runs are not seen, and it ends instead of chasing the head of a busy log. Pass
 * `atGeneration: 'live'` to let each page see whatever is committed when that page is read.
 */

/** Most events a stream asks the store for per page when no pageSize is given. */
export const DEFAULT_PAGE_SIZE = LIMITS.defaultReadLimit;

/** A generation to pin to, or 'live' for no pin (each page reads the newest committed state). */
export type StreamCut = number | 'live';

export interface ReadStreamOptions {
  /** First position to consider, inclusive (default 0). */
  fromPosition?: number;
  /** Last position to consider, inclusive (default: the end of the log at the cut). */
  toPosition?: number;
  /** Most events the whole stream yields (default: no limit). */
  limit?: number;
  /** Only events whose type is in this set. */
  types?: readonly string[];
  /** Only events with timestamp >= fromTime (ms since epoch). */
  fromTime?: number;
  /** Only events with timestamp <= toTime (ms since epoch). */
  toTime?: number;
  /** Default: store.generation when the stream is created. */
  atGeneration?: StreamCut;
  /** Events per store.read call (default 1000, at most LIMITS.maxReadLimit). */
  pageSize?: number;
  verifyCrc?: boolean;
}

const READ_STREAM_OPTIONS: ReadonlySet<string> = new Set([
  'fromPosition',
  'toPosition',
  'limit',
  'types',
  'fromTime',
  'toTime',
  'atGeneration',
  'pageSize',
  'verifyCrc',
]);

const INSTANCE_STREAM_OPTIONS: ReadonlySet<string> = new Set([
  'fromVersion',
  'toVersion',
  'limit',
  'atGeneration',
  'pageSize',
  'verifyCrc',
]);

export interface InstanceStreamOptions {
  /** First version to return, inclusive (default 1). */
  fromVersion?: number;
  /** Last version to return, inclusive (default: the instance's version at the cut). */
  toVersion?: number;
  /** Most events the whole stream yields (default: no limit). */
  limit?: number;
  /** Default: store.generation when the stream is created. */
  atGeneration?: StreamCut;
  /** Events per store.get call (default 1000, at most LIMITS.maxReadLimit). */
  pageSize?: number;
  verifyCrc?: boolean;
}

/** The async iterator every stream returns, plus where it stands. */
export interface EventStream extends AsyncIterableIterator<StoredEvent> {
  /** The generation this stream is pinned to, or undefined when it reads 'live'. */
  readonly generation: number | undefined;
  /** Ends the stream early; a pending or later next() resolves done. */
  return(): Promise<IteratorResult<StoredEvent, undefined>>;
}

export interface DomainStream extends EventStream {
  /**
   * Where a follow-up read or subscription continues this stream without gap or duplicate: after
   * the stream is exhausted, the position after the last event it considered.
   */
  readonly nextPosition: number;
}

export interface InstanceStream extends EventStream {
  /** The version after the last event yielded (fromVersion - 1 before the first). */
  readonly lastVersion: number;
  /** The instance's version at the cut, known once the first page has been read. */
  readonly instanceVersion: number | undefined;
}

function optionalInteger(name: string, value: unknown, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new RingStoreError('INVALID_QUERY', `${name} must be an integer from ${min} to ${max}`, {
      option: name,
    });
  }
  return value;
}

/** Validates pageSize; shared by streams and subscriptions. */
export function validatePageSize(pageSize: unknown): number {
  return optionalInteger('pageSize', pageSize, 1, LIMITS.maxReadLimit) ?? DEFAULT_PAGE_SIZE;
}

function resolveCut(store: EventStore, atGeneration: unknown): number | undefined {
  if (atGeneration === 'live') return undefined;
  return optionalInteger('atGeneration', atGeneration, 0, LIMITS.maxSafeInteger) ?? store.generation;
}

const DONE: IteratorResult<StoredEvent, undefined> = Object.freeze({ done: true, value: undefined });

/**
 * Shared page-by-page machinery: `fetch` returns the next page (empty when the stream is over);
 * the iterator hands out one event at a time and holds no more than that one page.
 */
abstract class PagedStream implements EventStream {
  #page: StoredEvent[] = [];
  #index = 0;
  #ended = false;
  #endedMidPage = false;
  #remaining: number;
  #lastDelivered: StoredEvent | undefined;
  #pending: Promise<IteratorResult<StoredEvent, undefined>> | undefined;

  constructor(
    readonly generation: number | undefined,
    limit: number | undefined,
  ) {
    this.#remaining = limit ?? Number.POSITIVE_INFINITY;
  }

  /** The last event next() handed out. */
  protected get lastDelivered(): StoredEvent | undefined {
    return this.#lastDelivered;
  }

  /** True while events of the current page are still to be handed out. */
  protected get midPage(): boolean {
    return this.#ended ? this.#endedMidPage : this.#index < this.#page.length;
  }

  /** The next page, or an empty array when nothing is left. */
  protected abstract fetch(maxEvents: number): Promise<StoredEvent[]>;

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<StoredEvent, undefined>> {
    // Calls made before the previous one settled are served in order, never interleaved.
    const run = async (): Promise<IteratorResult<StoredEvent, undefined>> => this.#advance();
    this.#pending = this.#pending ? this.#pending.then(run, run) : run();
    return this.#pending;
  }

  async return(): Promise<IteratorResult<StoredEvent, undefined>> {
    this.#end();
    return DONE;
  }

  async #advance(): Promise<IteratorResult<StoredEvent, undefined>> {
    if (this.#ended) return DONE;
    if (this.#index === this.#page.length) {
      if (this.#remaining === 0) return this.#end();
      let page: StoredEvent[];
      try {
        page = await this.fetch(this.#remaining);
      } catch (err) {
        this.#end();
        throw err;
      }
      if (this.#ended) return DONE;
      if (page.length === 0) return this.#end();
      this.#page = page;
      this.#index = 0;
    }
    const event = this.#page[this.#index]!;
    this.#index++;
    this.#remaining--;
    this.#lastDelivered = event;
    return { done: false, value: event };
  }

  #end(): IteratorResult<StoredEvent, undefined> {
    this.#ended = true;
    this.#endedMidPage = this.#index < this.#page.length;
    this.#page = [];
    this.#index = 0;
    return DONE;
  }
}

class DomainReadStream extends PagedStream implements DomainStream {
  readonly #store: EventStore;
  readonly #domain: string;
  readonly #options: ReadStreamOptions;
  readonly #pageSize: number;
  readonly #toPosition: number;
  #cursor: number;

  constructor(store: EventStore, domain: string, options: ReadStreamOptions) {
    validateDomain(domain);
    rejectUnknownOptions(options, READ_STREAM_OPTIONS, 'INVALID_QUERY', 'stream option');
    const limit = optionalInteger('limit', options.limit, 0, LIMITS.maxSafeInteger);
    const toPosition = optionalInteger('toPosition', options.toPosition, 0, LIMITS.maxSafeInteger);
    const pageSize = validatePageSize(options.pageSize);
    const generation = resolveCut(store, options.atGeneration);
    // Validate the store-level options now, so a bad option fails at the call, not at first next().
    const valid = validateReadOptions({
      fromPosition: options.fromPosition,
      types: options.types,
      fromTime: options.fromTime,
      toTime: options.toTime,
      verifyCrc: options.verifyCrc,
      limit: pageSize,
      atGeneration: generation,
    });
    super(generation, limit);
    this.#store = store;
    this.#domain = domain;
    this.#options = options;
    this.#pageSize = pageSize;
    this.#toPosition = toPosition ?? Number.POSITIVE_INFINITY;
    this.#cursor = valid.fromPosition;
  }

  get nextPosition(): number {
    // Ended or paused inside a page: continue right after the last event handed out (the events
    // between it and the next one in the page did not match the filters).
    const last = this.lastDelivered;
    return this.midPage && last ? last.position + 1 : this.#cursor;
  }

  protected async fetch(maxEvents: number): Promise<StoredEvent[]> {
    for (;;) {
      if (this.#cursor > this.#toPosition) return [];
      // Never ask for more than the position range can hold, so a bounded scan stops on time.
      const limit = Math.min(this.#pageSize, maxEvents, this.#toPosition - this.#cursor + 1);
      const from = this.#cursor;
      const { events, nextPosition } = await this.#store.read(this.#domain, {
        fromPosition: from,
        limit,
        types: this.#options.types,
        fromTime: this.#options.fromTime,
        toTime: this.#options.toTime,
        atGeneration: this.generation,
        verifyCrc: this.#options.verifyCrc,
      });
      const inRange = events.filter((event) => event.position <= this.#toPosition);
      if (inRange.length < events.length) {
        this.#cursor = this.#toPosition + 1;
        return inRange;
      }
      // A read that neither returned events nor moved forward has reached the end of the cut.
      if (events.length === 0 && nextPosition <= from) return [];
      this.#cursor = Math.max(nextPosition, from);
      if (events.length > 0) return events;
    }
  }
}

class InstanceReadStream extends PagedStream implements InstanceStream {
  readonly #store: EventStore;
  readonly #domain: string;
  readonly #aggregateType: string;
  readonly #id: bigint;
  readonly #pageSize: number;
  readonly #toVersion: number | undefined;
  readonly #verifyCrc: boolean;
  readonly #fromVersion: number;
  #nextVersion: number;
  #instanceVersion: number | undefined;

  constructor(
    store: EventStore,
    domain: string,
    aggregateType: string,
    id: AggregateIdInput,
    options: InstanceStreamOptions,
  ) {
    validateDomain(domain);
    rejectUnknownOptions(options, INSTANCE_STREAM_OPTIONS, 'INVALID_QUERY', 'stream option');
    validateAggregateType(aggregateType);
    const aggregateId = parseAggregateId(id);
    const limit = optionalInteger('limit', options.limit, 0, LIMITS.maxSafeInteger);
    const pageSize = validatePageSize(options.pageSize);
    const generation = resolveCut(store, options.atGeneration);
    const valid = validateGetOptions({
      fromVersion: options.fromVersion,
      toVersion: options.toVersion,
      verifyCrc: options.verifyCrc,
      limit: pageSize,
      atGeneration: generation,
    });
    super(generation, limit);
    this.#store = store;
    this.#domain = domain;
    this.#aggregateType = aggregateType;
    this.#id = aggregateId;
    this.#pageSize = pageSize;
    this.#toVersion = options.toVersion;
    this.#verifyCrc = valid.verifyCrc;
    this.#fromVersion = valid.fromVersion;
    this.#nextVersion = valid.fromVersion;
  }

  get lastVersion(): number {
    return this.lastDelivered?.version ?? this.#fromVersion - 1;
  }

  get instanceVersion(): number | undefined {
    return this.#instanceVersion;
  }

  protected async fetch(maxEvents: number): Promise<StoredEvent[]> {
    const last = Math.min(
      this.#toVersion ?? Number.POSITIVE_INFINITY,
      this.#instanceVersion ?? Number.POSITIVE_INFINITY,
    );
    if (this.#nextVersion > last) return [];
    const { version, events } = await this.#store.get(this.#domain, this.#aggregateType, this.#id, {
      fromVersion: this.#nextVersion,
      toVersion: this.#toVersion,
      limit: Math.min(this.#pageSize, maxEvents),
      atGeneration: this.generation,
      verifyCrc: this.#verifyCrc,
    });
    // Pinned, the version cannot move; live, it is the newest version seen so far.
    this.#instanceVersion = version;
    if (events.length > 0) this.#nextVersion = events.at(-1)!.version + 1;
    return events;
  }
}

/**
 * The domain log in commit order, page by page: positions, type set, time range and position
 * range combine (every bound inclusive). Pinned to store.generation at call time by default.
 */
export function readStream(store: EventStore, domain: string, options: ReadStreamOptions = {}): DomainStream {
  return new DomainReadStream(store, domain, options);
}

/** One instance's events by version range, page by page. Pinned to store.generation by default. */
export function instanceStream(
  store: EventStore,
  domain: string,
  aggregateType: string,
  id: AggregateIdInput,
  options: InstanceStreamOptions = {},
): InstanceStream {
  return new InstanceReadStream(store, domain, aggregateType, id, options);
}
