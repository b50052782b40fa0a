import { hasCode, RingStoreError } from '../errors.js';
import { rejectUnknownOptions } from '../model/known-options.js';
import { LIMITS } from '../model/limits.js';
import { validateConsumerName } from '../model/names.js';
import type { StoredEvent } from '../types.js';
import {
  type ConsumerPosition,
  type ConsumerPositions,
  StoredConsumerPositions,
  validateFollowedDomain,
} from './consumer-positions.js';
import type { EventStore } from './event-store.js';
import {
  type SubscribeOptions,
  type Subscription,
  type SubscriptionEnd,
  subscribe,
  type ValidSubscribeOptions,
  validateSubscribeOptions,
} from './subscription.js';

/**
 * Durable consumers: a subscription whose position is kept in the store (consumer-positions.ts),
 * so that a consumer started again under the same name, in this process or after a restart,
 * resumes where the last one stopped.
 *
 *   const mailer = store.consumer('invoice-mailer', { domain: 'billing', types: ['Paid'] });
 *   await mailer.run(async (event) => sendMail(event));   // until mailer.close()
 *
 * At-least-once: the position moves past an event only after the handler returned (its promise
 * resolved) for it and for every event before it. A position is stored after every
 * `checkpointEvery` handled events, whenever the consumer has handled everything committed (the end
 * of the backlog, the end of each live page), and when it stops. A handler that throws stops the
 * run: the position of the events handled before is stored, and the failed event is the first one
 * the next run hands out. When the store closes (or the process dies) between handling and
 * storing, the next run hands those events out again; a closed store ends a run quietly
 * (endReason 'store-closed').
 *
 * Memory is bounded whatever the number of events: a run holds one page of the subscription
 * (`pageSize`) and its position; loading a position reads one event, not the history.
 */

export interface ConsumerOptions {
  /** The domain whose log the consumer follows. A name follows one domain for good. */
  domain: string;
  /** Only events whose type is in this list are handed to the handler. */
  types?: readonly string[];
  /** Events per read, and so the most held in memory (default 1000). */
  pageSize?: number;
  /** Store the position after at most this many handled events (default 100, 1 … 100,000). */
  checkpointEvery?: number;
  /** Re-check the store this often while caught up (ms, default 1000), as subscribe(). */
  idleCheckMs?: number;
  /** Aborting ends the run (endReason 'aborted'), storing the position first. */
  signal?: AbortSignal;
  /** End the run (endReason 'caught-up') once everything committed has been handled. */
  endWhenCaughtUp?: boolean;
}

const CONSUMER_OPTIONS: ReadonlySet<string> = new Set([
  'domain',
  'types',
  'pageSize',
  'checkpointEvery',
  'idleCheckMs',
  'signal',
  'endWhenCaughtUp',
]);

/** Handles one event; the position moves past it once the returned promise resolves. */
export type ConsumerHandler = (event: StoredEvent) => unknown;

export interface ConsumerRunResult {
  /**
   * Why the run ended: 'closed', 'aborted', 'caught-up', or 'store-closed' (nothing stored then).
   * A read error rejects the run instead.
   */
  endReason: SubscriptionEnd;
  /** The stored position: where the next run starts. */
  nextPosition: number;
  /** Events the handler handled in this run. */
  handled: number;
}

export const DEFAULT_CHECKPOINT_EVERY = 100;

export class Consumer {
  readonly name: string;
  readonly domain: string;
  readonly #store: EventStore;
  readonly #positions: ConsumerPositions;
  readonly #subscribeOptions: ValidSubscribeOptions;
  readonly #checkpointEvery: number;
  #running: Promise<ConsumerRunResult> | undefined;
  #subscription: Subscription | undefined;
  #closing = false;

  constructor(store: EventStore, name: string, options: ConsumerOptions, positions: ConsumerPositions) {
    if (typeof options !== 'object' || options === null) {
      throw new RingStoreError('INVALID_OPTION', 'consumer options must be an object { domain, … }');
    }
    rejectUnknownOptions(options, CONSUMER_OPTIONS, 'INVALID_OPTION', 'consumer option');
    this.name = validateConsumerName(name);
    this.domain = validateFollowedDomain(options.domain);
    const checkpointEvery = options.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
    if (
      !Number.isSafeInteger(checkpointEvery) ||
      checkpointEvery < 1 ||
      checkpointEvery > LIMITS.maxReadLimit
    ) {
      throw new RingStoreError(
        'INVALID_OPTION',
        `checkpointEvery must be an integer from 1 to ${LIMITS.maxReadLimit}`,
        { option: 'checkpointEvery' },
      );
    }
    const { domain: _domain, checkpointEvery: _every, ...subscribeOptions } = options;
    this.#subscribeOptions = validateSubscribeOptions(subscribeOptions satisfies SubscribeOptions);
    this.#checkpointEvery = checkpointEvery;
    this.#store = store;
    this.#positions = positions;
  }

  /** The stored position: where the next run starts. */
  position(): Promise<ConsumerPosition> {
    return this.#positions.load(this.name, this.domain);
  }

  /** True while a run is in progress. */
  get running(): boolean {
    return this.#running !== undefined;
  }

  /**
   * Hands the domain's events from the stored position on to `handler`, one at a time, the
   * backlog and then live events, until close(), the signal, `endWhenCaughtUp` or the store closing
   * ends it; resolves after the last position was stored. Rejects with the handler's error after
   * storing the position before the failed event, or with CONSUMER_CONFLICT when this consumer is
   * already running or another one stored a position under its name.
   */
  run(handler: ConsumerHandler): Promise<ConsumerRunResult> {
    if (typeof handler !== 'function') {
      return Promise.reject(new RingStoreError('INVALID_OPTION', 'the handler must be a function'));
    }
    if (this.#running) {
      return Promise.reject(
        new RingStoreError('CONSUMER_CONFLICT', `consumer ${this.name} is already running`),
      );
    }
    this.#closing = false;
    const running = this.#run(handler).finally(() => {
      this.#running = undefined;
      this.#subscription = undefined;
    });
    this.#running = running;
    return running;
  }

  /**
   * Ends the run after the event in hand (if any) and resolves once its position is stored. Do not
   * await it inside the handler (the run waits for the handler): call it without await there.
   */
  async close(): Promise<void> {
    this.#closing = true;
    await this.#subscription?.close();
    await this.#running?.then(
      () => undefined,
      () => undefined,
    );
  }

  async #run(handler: ConsumerHandler): Promise<ConsumerRunResult> {
    let stored = await this.#positions.load(this.name, this.domain);
    const subscription = subscribe(this.#store, this.domain, {
      ...this.#subscribeOptions,
      fromPosition: stored.nextPosition,
    });
    this.#subscription = subscription;
    if (this.#closing) await subscription.close();
    let handledUpTo = stored.nextPosition;
    let unstored = 0;
    let handled = 0;
    const save = async (): Promise<void> => {
      unstored = 0;
      if (handledUpTo === stored.nextPosition) return;
      stored = await this.#positions.store(this.name, this.domain, handledUpTo, stored.version);
    };
    try {
      for await (const event of subscription) {
        await handler(event);
        handled++;
        unstored++;
        handledUpTo = subscription.nextPosition;
        const drained = subscription.caughtUp && subscription.bufferedEvents === 0;
        if (unstored >= this.#checkpointEvery || drained) await save();
      }
    } catch (err) {
      // A closed store takes no more positions: a quiet end, as when the subscription sees it.
      if (hasCode(err, 'STORE_CLOSED'))
        return { endReason: 'store-closed', nextPosition: stored.nextPosition, handled };
      // The handler (or a read, or a store) failed: keep what was handled before it. If storing
      // fails too, the first error is the one to report; those events are handed out again.
      await save().catch(() => undefined);
      throw err;
    }
    const endReason = subscription.endReason ?? 'closed';
    // The events handled since the last stored position are handed out again by the next run.
    if (endReason !== 'store-closed') {
      handledUpTo = subscription.nextPosition;
      await save();
    }
    return { endReason, nextPosition: stored.nextPosition, handled };
  }
}

/**
 * A durable consumer of `options.domain` named `name`, over any store; its positions are kept in
 * that store (or, through `positions`, elsewhere: the HTTP client keeps them through the API).
 */
export function consumer(
  store: EventStore,
  name: string,
  options: ConsumerOptions,
  positions: ConsumerPositions = new StoredConsumerPositions(store),
): Consumer {
  return new Consumer(store, name, options, positions);
}

/** A store that makes its own consumers (RingStore; HttpEventStore keeps positions via the API). */
interface ConsumerFactory {
  consumer(name: string, options: ConsumerOptions): Consumer;
}

/** The store's own consumer when it makes them, else one whose positions are kept in the store. */
export function consumerOf(store: EventStore, name: string, options: ConsumerOptions): Consumer {
  const factory = store as Partial<ConsumerFactory>;
  return typeof factory.consumer === 'function'
    ? factory.consumer(name, options)
    : consumer(store, name, options);
}
