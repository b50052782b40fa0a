import { crcMismatch, RingStoreError, versionConflict } from '../errors.js';
import type {
  DomainReadResult,
  EventInput,
  GetOptions,
  InstanceEvents,
  PutOptions,
  PutResult,
  ReadOptions,
  StoredEvent,
} from '../types.js';
import { validateInstanceAddress } from './address.js';
import { type CommitListener, CommitWatchers } from './commit-watchers.js';
import type { AggregateIdInput, EventStore } from './event-store.js';
import { eventCrc, expectedVersionMatches } from './events.js';
import { KeyGenerator } from './ids.js';
import { readInstance } from './instance-read.js';
import { validateDomain } from './names.js';
import { PutValidator } from './put-validator.js';
import { validateInstanceRead, validateReadOptions } from './queries.js';

export interface MemoryEventStoreOptions {
  /** Source of timestamps (ms); the store never lets them decrease. Default Date.now. */
  clock?: () => number;
}

/** Where a put landed, as the model decides it; tests may force these to mirror another store. */
export interface CommitStamp {
  generation: number;
  timestamp: number;
}

interface Instance {
  events: StoredEvent[];
  idempotency: Map<string, PutResult>;
}

/**
 * The reference model of ringstore (original notes: "make a memory map impl to test against").
 * Every put is its own generation. Simple and obviously right rather than fast: the real stores
 * are tested by comparing their results with this one's.
 */
export class MemoryEventStore implements EventStore {
  readonly #clock: () => number;
  readonly #keys = new KeyGenerator();
  readonly #validator = new PutValidator();
  readonly #domains = new Map<string, StoredEvent[]>();
  readonly #instances = new Map<string, Instance>();
  readonly #watchers = new CommitWatchers();
  #generation = 0;
  #lastTimestamp = 0;
  #closed = false;

  constructor(options: MemoryEventStoreOptions = {}) {
    this.#clock = options.clock ?? Date.now;
  }

  get generation(): number {
    return this.#generation;
  }

  async put(
    domain: string,
    aggregateType: string,
    id: AggregateIdInput,
    events: readonly EventInput[],
    options?: PutOptions,
  ): Promise<PutResult> {
    return this.putSync(domain, aggregateType, id, events, options);
  }

  /**
   * The synchronous core of put. `stamp` lets a test mirror the generation and timestamp that a
   * real store assigned, so that time and generation queries can be compared exactly.
   */
  putSync(
    domain: string,
    aggregateType: string,
    id: AggregateIdInput,
    events: readonly EventInput[],
    options?: PutOptions,
    stamp?: CommitStamp,
  ): PutResult {
    this.#assertOpen();
    const {
      aggregateId,
      events: valid,
      expectedVersion,
      idempotencyKey,
    } = this.#validator.put(domain, aggregateType, id, events, options);
    for (const [index, event] of valid.entries()) {
      if (event.crc !== undefined && event.crc !== eventCrc(event)) {
        throw crcMismatch(index);
      }
    }
    const instance = this.#instance(domain, aggregateType, aggregateId);
    if (idempotencyKey !== undefined) {
      const earlier = instance.idempotency.get(idempotencyKey);
      if (earlier) return { ...earlier, replayed: true };
    }
    const actual = instance.events.length;
    if (!expectedVersionMatches(expectedVersion, actual)) throw versionConflict(actual, expectedVersion);

    const generation = stamp?.generation ?? this.#generation + 1;
    const timestamp = stamp?.timestamp ?? Math.max(this.#lastTimestamp, Math.floor(this.#clock()));
    this.#generation = Math.max(this.#generation, generation);
    this.#lastTimestamp = Math.max(this.#lastTimestamp, timestamp);
    const log = this.#domainLog(domain);
    const firstPosition = log.length;
    for (const [index, event] of valid.entries()) {
      const stored: StoredEvent = {
        domain,
        aggregateType,
        aggregateId,
        version: actual + index + 1,
        position: firstPosition + index,
        generation,
        timestamp,
        type: event.type,
        data: Uint8Array.from(event.data),
        metadata: Uint8Array.from(event.metadata),
        crc: eventCrc(event),
      };
      log.push(stored);
      instance.events.push(stored);
    }
    const result: PutResult = {
      firstVersion: actual + 1,
      lastVersion: actual + valid.length,
      firstPosition,
      generation,
      timestamp,
      durability: 'fsync',
      replayed: false,
    };
    if (idempotencyKey !== undefined) instance.idempotency.set(idempotencyKey, result);
    this.#watchers.notify({ generation, domains: [domain] });
    return result;
  }

  async get(
    domain: string,
    aggregateType: string,
    id: AggregateIdInput,
    options?: GetOptions,
  ): Promise<InstanceEvents> {
    this.#assertOpen();
    const aggregateId = validateInstanceAddress(domain, aggregateType, id);
    const read = validateInstanceRead(options);
    const all = this.#instances.get(instanceKey(domain, aggregateType, aggregateId))?.events ?? [];
    return readInstance(read, (o) => {
      const visible = all.filter((e) => e.generation <= o.atGeneration);
      const events = visible
        .filter((e) => e.version >= o.fromVersion && e.version <= o.toVersion)
        .slice(0, o.limit)
        .map(copyEvent);
      return { version: visible.length, events };
    });
  }

  async read(domain: string, options?: ReadOptions): Promise<DomainReadResult> {
    this.#assertOpen();
    validateDomain(domain);
    const o = validateReadOptions(options);
    const log = this.#domains.get(domain) ?? [];
    let start = o.fromPosition;
    while (start < log.length && log[start]!.timestamp < o.fromTime) start++;
    let end = 0;
    while (end < log.length && log[end]!.generation <= o.atGeneration && log[end]!.timestamp <= o.toTime)
      end++;
    const events: StoredEvent[] = [];
    for (let position = start; position < end; position++) {
      if (events.length === o.limit) return { events, nextPosition: position };
      const event = log[position]!;
      if (!o.types || o.types.has(event.type)) events.push(copyEvent(event));
    }
    return { events, nextPosition: Math.max(start, end) };
  }

  hasDomain(domain: string): boolean {
    return this.#domains.has(domain);
  }

  domains(): string[] {
    return [...this.#domains.keys()].sort();
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
  }

  #assertOpen(): void {
    if (this.#closed) throw new RingStoreError('STORE_CLOSED');
  }

  #domainLog(domain: string): StoredEvent[] {
    let log = this.#domains.get(domain);
    if (!log) {
      log = [];
      this.#domains.set(domain, log);
    }
    return log;
  }

  #instance(domain: string, aggregateType: string, id: bigint): Instance {
    const key = instanceKey(domain, aggregateType, id);
    let instance = this.#instances.get(key);
    if (!instance) {
      instance = { events: [], idempotency: new Map() };
      this.#instances.set(key, instance);
    }
    return instance;
  }
}

function instanceKey(domain: string, aggregateType: string, id: bigint): string {
  return `${domain}/${aggregateType}/${id}`;
}

function copyEvent(event: StoredEvent): StoredEvent {
  return { ...event, data: Uint8Array.from(event.data), metadata: Uint8Array.from(event.metadata) };
}
