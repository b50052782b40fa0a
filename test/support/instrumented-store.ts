import type { AggregateIdInput, CommitNotice, EventStore } from '../../src/api/event-store.js';
import type { EventInput, GetOptions, PutOptions, ReadOptions } from '../../src/types.js';

/**
 * An EventStore that forwards to another and counts what a subscription holds: events returned by
 * read() and watchers registered. `hideClose` withholds the closed notice, like a store whose
 * close() notifies nobody.
 */
export class InstrumentedStore implements EventStore {
  eventsRead = 0;
  reads = 0;
  watchers = 0;

  constructor(
    readonly inner: EventStore,
    readonly hideClose = false,
  ) {}

  get generation(): number {
    return this.inner.generation;
  }

  put(
    domain: string,
    type: string,
    id: AggregateIdInput,
    events: readonly EventInput[],
    options?: PutOptions,
  ) {
    return this.inner.put(domain, type, id, events, options);
  }

  get(domain: string, type: string, id: AggregateIdInput, options?: GetOptions) {
    return this.inner.get(domain, type, id, options);
  }

  async read(domain: string, options?: ReadOptions) {
    this.reads++;
    const result = await this.inner.read(domain, options);
    this.eventsRead += result.events.length;
    return result;
  }

  hasDomain(domain: string): boolean {
    return this.inner.hasDomain(domain);
  }

  domains(): string[] {
    return this.inner.domains();
  }

  newKey(): bigint {
    return this.inner.newKey();
  }

  watch(listener: (notice: CommitNotice) => void): () => void {
    this.watchers++;
    let active = true;
    const stop = this.inner.watch((notice) => {
      if (!(notice.closed && this.hideClose)) listener(notice);
    });
    return () => {
      if (active) this.watchers--;
      active = false;
      stop();
    };
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
