import { parseAggregateId } from '../model/ids.js';
import { validateAggregateType, validateDomain } from '../model/names.js';
import type {
  DomainReadResult,
  EventInput,
  GetOptions,
  InstanceEvents,
  PutOptions,
  PutResult,
  ReadOptions,
} from '../types.js';
import { type Consumer, type ConsumerOptions, consumerOf } from './consumer.js';
import type { AggregateIdInput, EventStore } from './event-store.js';
import {
  type DomainStream,
  type InstanceStream,
  type InstanceStreamOptions,
  instanceStream,
  type ReadStreamOptions,
  readStream,
} from './streams.js';
import { type SubscribeOptions, type Subscription, subscribe } from './subscription.js';

/**
 * The navigational API of the original notes, over any EventStore:
 *
 *   const person = store.domain('namespace').aggregate('person');
 *   await person.instance(id).put(registered, nameChanged);
 *   await person.instance(id).put([registered], { expectedVersion: 0 });
 *   const { version, events } = await person.instance(id).get();
 */
export class Domain {
  constructor(
    readonly store: EventStore,
    readonly name: string,
  ) {
    validateDomain(name);
  }

  aggregate(aggregateType: string): Aggregate {
    return new Aggregate(this, aggregateType);
  }

  read(options?: ReadOptions): Promise<DomainReadResult> {
    return this.store.read(this.name, options);
  }

  /** The domain log as an async iterator, page by page, pinned to one generation by default. */
  stream(options?: ReadStreamOptions): DomainStream {
    return readStream(this.store, this.name, options);
  }

  /** The backlog from `fromPosition`, then live events as they commit (see src/api/subscription.ts). */
  subscribe(options?: SubscribeOptions): Subscription {
    return subscribe(this.store, this.name, options);
  }

  /** A durable consumer of this domain, its position kept in the store (src/api/consumer.ts). */
  consumer(name: string, options: Omit<ConsumerOptions, 'domain'> = {}): Consumer {
    return consumerOf(this.store, name, { ...options, domain: this.name });
  }
}

export class Aggregate {
  constructor(
    readonly domain: Domain,
    readonly name: string,
  ) {
    validateAggregateType(name);
  }

  instance(id: AggregateIdInput): Instance {
    return new Instance(this, parseAggregateId(id));
  }
}

export class Instance {
  constructor(
    readonly aggregate: Aggregate,
    readonly id: bigint,
  ) {}

  /** put(event, event, …) or put([events], { expectedVersion, idempotencyKey }). */
  put(events: readonly EventInput[], options?: PutOptions): Promise<PutResult>;
  put(...events: EventInput[]): Promise<PutResult>;
  put(first?: EventInput | readonly EventInput[], ...rest: unknown[]): Promise<PutResult> {
    const { store, name: domain } = this.aggregate.domain;
    if (Array.isArray(first)) {
      return store.put(domain, this.aggregate.name, this.id, first, rest[0] as PutOptions | undefined);
    }
    const events = (first === undefined ? [] : [first, ...rest]) as EventInput[];
    return store.put(domain, this.aggregate.name, this.id, events);
  }

  get(options?: GetOptions): Promise<InstanceEvents> {
    const { store, name: domain } = this.aggregate.domain;
    return store.get(domain, this.aggregate.name, this.id, options);
  }

  /** The instance's events as an async iterator, page by page, pinned to one generation by default. */
  stream(options?: InstanceStreamOptions): InstanceStream {
    const { store, name: domain } = this.aggregate.domain;
    return instanceStream(store, domain, this.aggregate.name, this.id, options);
  }
}
