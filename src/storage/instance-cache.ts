import type { PutResult } from '../types.js';

/**
 * What the writer knows of one instance: its version and, once a keyed put needed them, the results
 * of its keyed puts (idempotency). A cached copy: the index on disk (DomainIndex) holds the truth.
 */
export interface InstanceState {
  version: number;
  /** Results of puts that carried an idempotency key, by key (those loaded or made since). */
  keys: Map<string, PutResult> | undefined;
  /** Whether `keys` holds every keyed put of the instance, those before it was cached included. */
  keysLoaded: boolean;
  /** Set on each use; the clock hand clears it and evicts states found clear (second chance). */
  referenced: boolean;
}

/**
 * A bounded cache of instance states across every domain and aggregate type of a writer, evicted
 * by the CLOCK rule (least recently used, approximately, at one flag per use).
 *
 *   queue (oldest first):  [map,id] [map,id] [map,id] ...
 *                            ^ hand: referenced → flag cleared, moved to the back
 *                                    not referenced → deleted from its map
 *
 * Each aggregate type keeps its own Map<bigint, InstanceState> (no string keys on the hot path);
 * the queue only remembers which map an entry lives in. Eviction runs between append calls, never
 * during one, so the states an append call updates stay until its batches are in the index.
 */
export class InstanceCache {
  readonly #capacity: number;
  #maps: Map<bigint, InstanceState>[] = [];
  #ids: bigint[] = [];
  #head = 0;
  #hits = 0;
  #misses = 0;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#ids.length - this.#head;
  }

  get capacity(): number {
    return this.#capacity;
  }

  stats(): { size: number; capacity: number; hits: number; misses: number } {
    return { size: this.size, capacity: this.#capacity, hits: this.#hits, misses: this.#misses };
  }

  /** The cached state, marked as used; or, on a miss, the one `load` makes, cached. */
  get(map: Map<bigint, InstanceState>, id: bigint, load: () => InstanceState): InstanceState {
    const cached = map.get(id);
    if (cached) {
      this.#hits++;
      cached.referenced = true;
      return cached;
    }
    this.#misses++;
    const state = load();
    map.set(id, state);
    this.#maps.push(map);
    this.#ids.push(id);
    return state;
  }

  /** Evicts states until the cache holds at most its capacity. */
  trim(): void {
    let budget = 2 * this.size;
    while (this.size > this.#capacity && budget-- > 0) {
      const map = this.#maps[this.#head]!;
      const id = this.#ids[this.#head]!;
      this.#head++;
      const state = map.get(id);
      if (state?.referenced) {
        state.referenced = false;
        this.#maps.push(map);
        this.#ids.push(id);
      } else {
        map.delete(id);
      }
    }
    if (this.#head > 1024 && this.#head * 2 > this.#ids.length) {
      this.#maps = this.#maps.slice(this.#head);
      this.#ids = this.#ids.slice(this.#head);
      this.#head = 0;
    }
  }
}
