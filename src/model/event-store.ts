import type {
  DomainReadResult,
  EventInput,
  GetOptions,
  InstanceEvents,
  PutOptions,
  PutResult,
  ReadOptions,
} from '../types.js';

/** Ids are accepted as bigint, safe integer or decimal string; stores return bigint. */
export type AggregateIdInput = bigint | number | string;

/** What a store tells its watchers after each commit cycle. */
export interface CommitNotice {
  /** The last committed generation after this commit. */
  generation: number;
  /** The domains that received events in this commit. */
  domains: readonly string[];
  /**
   * True on the last notice a listener gets: the store is closing (domains is empty). Listeners
   * such as live subscriptions end on it instead of waiting for commits that will never come.
   */
  closed?: boolean;
}

/**
 * The contract every ringstore implementation keeps: the in-memory model (MemoryEventStore), the
 * embedded store (RingStore) and the HTTP client. One contract test suite runs against all of them.
 */
export interface EventStore {
  put(
    domain: string,
    aggregateType: string,
    id: AggregateIdInput,
    events: readonly EventInput[],
    options?: PutOptions,
  ): Promise<PutResult>;
  get(
    domain: string,
    aggregateType: string,
    id: AggregateIdInput,
    options?: GetOptions,
  ): Promise<InstanceEvents>;
  read(domain: string, options?: ReadOptions): Promise<DomainReadResult>;
  /** True once the domain holds at least one event. */
  hasDomain(domain: string): boolean;
  /** Domains that hold events, sorted. */
  domains(): string[];
  /** The last committed generation (0 before any commit). */
  readonly generation: number;
  /** A new unique, roughly time-ordered aggregate id. */
  newKey(): bigint;
  /**
   * Calls `listener` after every commit cycle, until the returned function is called. close()
   * calls every remaining listener once with `{ closed: true, domains: [] }`, then drops it.
   */
  watch(listener: (notice: CommitNotice) => void): () => void;
  close(): Promise<void>;
}
