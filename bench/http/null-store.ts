import type { EventStore } from '../../src/api/event-store.js';
import type { DomainReadResult, EventInput, InstanceEvents, PutOptions, PutResult } from '../../src/types.js';

/** A store whose put does nothing and resolves at once: what the HTTP layer costs apart from a store. */
export class NullStore implements EventStore {
  readonly generation = 0;
  #position = 0;

  put(
    _domain: string,
    _type: string,
    _id: unknown,
    events: readonly EventInput[],
    _options?: PutOptions,
  ): Promise<PutResult> {
    const firstPosition = this.#position;
    this.#position += events.length;
    return Promise.resolve({
      firstVersion: 1,
      lastVersion: events.length,
      firstPosition,
      generation: 0,
      timestamp: Date.now(),
      durability: 'fsync',
      replayed: false,
    });
  }

  get(): Promise<InstanceEvents> {
    return Promise.resolve({ version: 0, events: [] });
  }

  read(): Promise<DomainReadResult> {
    return Promise.resolve({ events: [], nextPosition: this.#position });
  }

  hasDomain(): boolean {
    return true;
  }

  domains(): string[] {
    return [];
  }

  newKey(): bigint {
    return 1n;
  }

  watch(): () => void {
    return () => {};
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
