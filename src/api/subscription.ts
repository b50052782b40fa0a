import { hasCode, RingStoreError } from '../errors.js';
import { rejectUnknownOptions } from '../model/known-options.js';
import { validateDomain } from '../model/names.js';
import { validateReadOptions } from '../model/queries.js';
import type { StoredEvent } from '../types.js';
import type { CommitNotice, EventStore } from './event-store.js';
import { logEnd } from './log-end.js';
import { validatePageSize } from './streams.js';

/**
 * Live subscriptions: the domain log from a position on, first the backlog, then every event as
 * it commits, in position order.
 *
 *   next() ──► page has events? ──yes──► hand out one
 *                 │ no
 *                 ▼
 *   read(fromPosition = cursor, limit = pageSize) ──events──► page = events, cursor = nextPosition
 *                 │ nothing new (caught up)
 *                 ▼
 *   wait for: a commit notice for this domain │ close()/return() │ abort │ store closed │ idle re-check
 *
 * Catch-up and live are the same loop: every read starts at the position after the last event
 * read, so the switch between them can neither skip nor repeat an event. A notice only sets a
 * flag; the flag is cleared before each read, so a commit that lands while a read is in flight
 * triggers one more read instead of being lost.
 *
 * Slow consumers: the subscription is pull-based. It reads the next page only when the consumer
 * asks for an event and the current page is used up, so it never holds more than one page
 * (pageSize events) however far behind the consumer falls; a slow consumer simply keeps reading
 * older events from the store. Nothing is queued per commit.
 */

export interface SubscribeOptions {
  /**
   * First position to deliver, inclusive (default 0: the whole log, then live). `'end'`: the end of
   * the log when subscribe() is called, so only events committed from then on (no backlog).
   */
  fromPosition?: number | 'end';
  /** Only events whose type is in this set. */
  types?: readonly string[];
  /** Events per store.read call, and so the most events held in memory (default 1000). */
  pageSize?: number;
  /** Aborting ends the subscription like close(). */
  signal?: AbortSignal;
  /**
   * While caught up, re-check the store this often (ms) even without a commit notice, so that a
   * closed store is noticed by stores whose close() sends no notice. Default 1000.
   */
  idleCheckMs?: number;
  /**
   * End the subscription (endReason 'caught-up') once the backlog has been delivered, instead of
   * waiting for live events: "read what is there, then stop". With an empty backlog the first
   * next() resolves done.
   */
  endWhenCaughtUp?: boolean;
  /**
   * Called once when the backlog has been delivered: after the last backlog event was handed out
   * (on the consumer's next call), or when the first read finds nothing. The SSE route sends its
   * `caught-up` message from here.
   */
  onCaughtUp?: () => void;
}

/** Why a subscription ended. */
export type SubscriptionEnd = 'closed' | 'aborted' | 'store-closed' | 'error' | 'caught-up';

export interface Subscription extends AsyncIterableIterator<StoredEvent> {
  /** Ends the subscription: a pending next() resolves done, later ones too. */
  close(): Promise<void>;
  return(): Promise<IteratorResult<StoredEvent, undefined>>;
  /**
   * The position after the last event handed out: where to resume without gap or duplicate. With
   * `fromPosition: 'end'` it is -1 until the end of the log has been read (at once for embedded
   * stores, after one request for a remote one; always by the time next() settles).
   */
  readonly nextPosition: number;
  /** Events read from the store and not yet handed out: never more than pageSize. */
  readonly bufferedEvents: number;
  /**
   * True once the backlog has been delivered: already while the last backlog event is being handed
   * out (so `if (subscription.caughtUp) break` after handling an event stops right after the
   * backlog), or once a read found nothing new. It stays true.
   */
  readonly caughtUp: boolean;
  /** Set once the subscription has ended. */
  readonly endReason: SubscriptionEnd | undefined;
}

export const DEFAULT_IDLE_CHECK_MS = 1000;

const DONE: IteratorResult<StoredEvent, undefined> = Object.freeze({ done: true, value: undefined });

/** SubscribeOptions with defaults applied. */
export interface ValidSubscribeOptions {
  fromPosition: number | 'end';
  types: readonly string[] | undefined;
  pageSize: number;
  idleCheckMs: number;
  signal: AbortSignal | undefined;
  endWhenCaughtUp: boolean;
  onCaughtUp: (() => void) | undefined;
}

/** The options subscribe() knows; any other is refused (INVALID_OPTION). */
const SUBSCRIBE_OPTIONS: ReadonlySet<string> = new Set([
  'fromPosition',
  'types',
  'pageSize',
  'signal',
  'idleCheckMs',
  'endWhenCaughtUp',
  'onCaughtUp',
]);

/** Validates every option of subscribe() (INVALID_QUERY, INVALID_NAME, INVALID_OPTION). */
export function validateSubscribeOptions(options: SubscribeOptions): ValidSubscribeOptions {
  rejectUnknownOptions(options, SUBSCRIBE_OPTIONS, 'INVALID_OPTION', 'subscribe option');
  const pageSize = validatePageSize(options.pageSize);
  const { fromPosition } = options;
  const valid = validateReadOptions({
    fromPosition: fromPosition === 'end' ? undefined : fromPosition,
    types: options.types,
  });
  const idleCheckMs = options.idleCheckMs ?? DEFAULT_IDLE_CHECK_MS;
  if (!Number.isSafeInteger(idleCheckMs) || idleCheckMs < 1 || idleCheckMs > 2 ** 31 - 1) {
    throw new RingStoreError('INVALID_OPTION', 'idleCheckMs must be an integer from 1 to 2^31-1', {
      option: 'idleCheckMs',
    });
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new RingStoreError('INVALID_OPTION', 'signal must be an AbortSignal', { option: 'signal' });
  }
  if (options.endWhenCaughtUp !== undefined && typeof options.endWhenCaughtUp !== 'boolean') {
    throw new RingStoreError('INVALID_OPTION', 'endWhenCaughtUp must be a boolean', {
      option: 'endWhenCaughtUp',
    });
  }
  if (options.onCaughtUp !== undefined && typeof options.onCaughtUp !== 'function') {
    throw new RingStoreError('INVALID_OPTION', 'onCaughtUp must be a function', { option: 'onCaughtUp' });
  }
  return {
    fromPosition: fromPosition === 'end' ? 'end' : valid.fromPosition,
    types: options.types,
    pageSize,
    idleCheckMs,
    signal: options.signal,
    endWhenCaughtUp: options.endWhenCaughtUp ?? false,
    onCaughtUp: options.onCaughtUp,
  };
}

class LiveSubscription implements Subscription {
  readonly #store: EventStore;
  readonly #domain: string;
  readonly #types: readonly string[] | undefined;
  readonly #pageSize: number;
  readonly #idleCheckMs: number;
  readonly #signal: AbortSignal | undefined;
  readonly #unwatch: () => void;
  readonly #onAbort = (): void => this.#end('aborted');
  #page: StoredEvent[] = [];
  #index = 0;
  /** Where the next store.read starts. */
  #cursor: number;
  /** Where a resumed subscription would start: after the last event handed out. */
  #delivered: number;
  /** With fromPosition 'end': resolves once the log's end has been read into cursor and delivered. */
  #starting: Promise<void> | undefined;
  #startError: unknown;
  /** A commit for this domain happened since the last read began. */
  #dirty = false;
  #storeClosed = false;
  #caughtUp = false;
  #announced = false;
  /** The page in hand came from a read that reached the end of the log (it was not cut by limit). */
  #pageReachedEnd = false;
  readonly #endWhenCaughtUp: boolean;
  readonly #onCaughtUp: (() => void) | undefined;
  #endReason: SubscriptionEnd | undefined;
  #wake: (() => void) | undefined;
  #pending: Promise<IteratorResult<StoredEvent, undefined>> | undefined;

  constructor(store: EventStore, domain: string, options: SubscribeOptions) {
    validateDomain(domain);
    const valid = validateSubscribeOptions(options);
    // undefined with 'end': the log's end, read below.
    const start = valid.fromPosition === 'end' ? undefined : valid.fromPosition;
    this.#endWhenCaughtUp = valid.endWhenCaughtUp;
    this.#onCaughtUp = valid.onCaughtUp;
    this.#store = store;
    this.#domain = domain;
    this.#types = valid.types;
    this.#pageSize = valid.pageSize;
    this.#idleCheckMs = valid.idleCheckMs;
    this.#cursor = start ?? 0;
    this.#delivered = start ?? -1;
    this.#signal = valid.signal;
    // Watch before the first read, so no commit between that read and the first wait is missed.
    this.#unwatch = store.watch((notice) => this.#onNotice(notice));
    // The end is read now, not at the first next(): events committed after subscribe() are live.
    if (start === undefined) {
      this.#starting = logEnd(store, domain).then(
        (end) => {
          this.#cursor = end;
          this.#delivered = end;
        },
        (err: unknown) => {
          this.#startError = err;
        },
      );
    }
    if (this.#signal?.aborted) this.#end('aborted');
    else this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  get nextPosition(): number {
    return this.#delivered;
  }

  get bufferedEvents(): number {
    return this.#page.length - this.#index;
  }

  get caughtUp(): boolean {
    return this.#caughtUp;
  }

  get endReason(): SubscriptionEnd | undefined {
    return this.#endReason;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<StoredEvent, undefined>> {
    // Calls made before the previous one settled are served in order, never interleaved.
    const run = (): Promise<IteratorResult<StoredEvent, undefined>> => this.#advance();
    this.#pending = this.#pending ? this.#pending.then(run, run) : run();
    return this.#pending;
  }

  async return(): Promise<IteratorResult<StoredEvent, undefined>> {
    this.#end('closed');
    return DONE;
  }

  async close(): Promise<void> {
    this.#end('closed');
  }

  async #advance(): Promise<IteratorResult<StoredEvent, undefined>> {
    if (this.#starting && !(await this.#started())) return DONE;
    if (this.#endReason) return DONE;
    this.#announce();
    if (this.#caughtUp && this.#endWhenCaughtUp && this.#index === this.#page.length) {
      this.#end('caught-up');
      return DONE;
    }
    if (this.#index === this.#page.length && !(await this.#fill())) return DONE;
    const event = this.#page[this.#index]!;
    this.#index++;
    if (this.#index === this.#page.length && !this.#caughtUp) {
      // The last event of the page: is it the last of the backlog? A page not cut by limit ends
      // at the log's end; a full page may too, which only the next read can tell.
      if (this.#pageReachedEnd) this.#caughtUp = true;
      else if (!(await this.#lookAhead())) return DONE;
    }
    this.#delivered = event.position + 1;
    // At the end of a page, the cursor is past any events of other types that followed it.
    if (this.#index === this.#page.length) this.#delivered = Math.max(this.#delivered, this.#cursor);
    return { done: false, value: event };
  }

  /** Waits for the log's end (fromPosition 'end'); a failure to read it ends the subscription. */
  async #started(): Promise<boolean> {
    await this.#starting;
    this.#starting = undefined;
    if (this.#endReason) return false;
    if (this.#startError === undefined) return true;
    this.#failed(this.#startError);
    return false;
  }

  /** A read failed: the store closed (a quiet end), or anything else (the pending next() rejects). */
  #failed(err: unknown): void {
    if (hasCode(err, 'STORE_CLOSED')) {
      this.#end('store-closed');
      return;
    }
    this.#end('error');
    throw err;
  }

  /**
   * Reads the page after a full one while its last event is being handed out, so that event can
   * say whether it ends the backlog. The page in hand is used up, so at most one page is held as
   * before. A failed read is left for the next fill to meet again. False if the subscription
   * ended meanwhile.
   */
  async #lookAhead(): Promise<boolean> {
    for (;;) {
      this.#dirty = false;
      const from = this.#cursor;
      let result: { events: StoredEvent[]; nextPosition: number };
      try {
        result = await this.#read(from);
      } catch {
        return this.#endReason === undefined;
      }
      if (this.#endReason) return false;
      if (result.events.length > 0) {
        this.#takePage(result, from);
        return true;
      }
      if (result.nextPosition > from) {
        this.#cursor = result.nextPosition;
        continue;
      }
      this.#caughtUp = true;
      return true;
    }
  }

  #read(from: number): Promise<{ events: StoredEvent[]; nextPosition: number }> {
    return this.#store.read(this.#domain, { fromPosition: from, limit: this.#pageSize, types: this.#types });
  }

  #takePage(result: { events: StoredEvent[]; nextPosition: number }, from: number): void {
    this.#cursor = Math.max(result.nextPosition, from);
    this.#page = result.events;
    this.#index = 0;
    this.#pageReachedEnd = result.events.length < this.#pageSize;
  }

  /** Calls onCaughtUp once, after the backlog has been handed out. */
  #announce(): void {
    if (!this.#caughtUp || this.#announced || this.#index < this.#page.length) return;
    this.#announced = true;
    this.#onCaughtUp?.();
  }

  /** Reads until there is a page to hand out (true) or the subscription has ended (false). */
  async #fill(): Promise<boolean> {
    this.#page = [];
    this.#index = 0;
    for (;;) {
      if (this.#endReason) return false;
      this.#dirty = false;
      const from = this.#cursor;
      let result: { events: StoredEvent[]; nextPosition: number };
      try {
        result = await this.#read(from);
      } catch (err) {
        this.#failed(err);
        return false;
      }
      if (this.#endReason) return false;
      if (result.events.length > 0) {
        this.#takePage(result, from);
        return true;
      }
      if (result.nextPosition > from) {
        // Only events of other types: move past them and keep reading.
        this.#cursor = result.nextPosition;
        this.#delivered = Math.max(this.#delivered, this.#cursor);
        continue;
      }
      this.#caughtUp = true;
      this.#announce();
      if (this.#endWhenCaughtUp) {
        this.#end('caught-up');
        return false;
      }
      if (this.#storeClosed) {
        this.#end('store-closed');
        return false;
      }
      if (!this.#dirty) await this.#idle();
    }
  }

  /** Resolves on the next commit notice, end, abort or idle re-check, whichever comes first. */
  #idle(): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        if (this.#wake === wake) this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(wake, this.#idleCheckMs);
      this.#wake = wake;
    });
  }

  #onNotice(notice: CommitNotice): void {
    if (notice.closed) {
      this.#storeClosed = true;
      this.#end('store-closed');
      return;
    }
    if (!notice.domains.includes(this.#domain)) return;
    this.#dirty = true;
    this.#wake?.();
  }

  #end(reason: SubscriptionEnd): void {
    if (this.#endReason) return;
    this.#endReason = reason;
    this.#page = [];
    this.#index = 0;
    this.#unwatch();
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#wake?.();
  }
}

/**
 * Subscribes to a domain's log from `fromPosition` (default 0, or 'end' for live events only): the
 * backlog, then live events as they commit, in position order, without gap or duplicate. End it with close() / return() /
 * break in a for-await loop, or with `signal`; it also ends (done) when the store closes. A read
 * error other than STORE_CLOSED ends it and rejects the pending next() with that error.
 */
export function subscribe(store: EventStore, domain: string, options: SubscribeOptions = {}): Subscription {
  return new LiveSubscription(store, domain, options);
}
