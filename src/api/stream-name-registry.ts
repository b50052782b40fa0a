import { hasCode, RingStoreError } from '../errors.js';
import { validateAggregateType, validateDomain } from '../model/names.js';
import type { EventStore } from './event-store.js';
import { instanceStream } from './streams.js';

/**
 * A durable map from free-form stream names (emmett's, any string) to ringstore instances, kept in
 * the store itself, so that every process using the store agrees on it.
 *
 * Layout: one instance, (registryDomain, 'registry', 1), holds one `StreamRegistered` event per
 * name, data `{"streamName":…,"aggregateType":…}` as JSON text. The id a name maps to is the
 * version of its registration event: the first name registered is id 1, the second id 2, and so on.
 * Ids are therefore unique by construction (no hashing, no collisions) and never reused.
 *
 * Registering appends with `expectedVersion` = the number of registrations this registry has read.
 * The append succeeds only if nobody registered anything since, so the writer has seen every
 * earlier registration and knows its name is not among them: two processes (or two registries over
 * one store) can never give one name two ids. On VERSION_CONFLICT the registry reads the new
 * registrations and, if its name is now there, uses that id; otherwise it tries again. Each conflict
 * means another registration succeeded, so the registry as a whole always makes progress.
 *
 * A name's registration is durable before any event of its stream is appended (the events' put
 * starts after the registration's put resolved), so with durability 'fsync' (the default) a crash
 * never leaves events whose name is unknown. With 'write' or 'none' it can: recovery works per
 * domain, so the registry domain may lose a registration whose stream's events survive, and the
 * next registration then reuses that id.
 *
 * Cache: every registration read is kept in memory (name → address) and never invalidated, since a
 * registration never changes. Looking up an unknown name reads only the registrations appended
 * since the last read. Memory and the first lookup's reading grow with the number of names.
 */

/** Where a stream name's events live. */
export interface StreamAddress {
  domain: string;
  aggregateType: string;
  id: bigint;
}

export const REGISTRY_AGGREGATE_TYPE = 'registry';
export const REGISTRY_ID = 1n;
export const STREAM_REGISTERED = 'StreamRegistered';
/** Longest stream name, in UTF-8 bytes (a registration is one event of at most 65,535 bytes). */
export const MAX_STREAM_NAME_BYTES = 4096;
/** Registration attempts before a registry gives up under sustained contention. */
const MAX_REGISTRATION_ATTEMPTS = 100;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function validateStreamName(name: unknown): string {
  if (
    typeof name !== 'string' ||
    name.length === 0 ||
    encoder.encode(name).byteLength > MAX_STREAM_NAME_BYTES
  ) {
    throw new RingStoreError(
      'INVALID_NAME',
      `a stream name must be a non-empty string of at most ${MAX_STREAM_NAME_BYTES} UTF-8 bytes`,
      { kind: 'stream name' },
    );
  }
  return name;
}

interface Registration {
  aggregateType: string;
  id: bigint;
}

export class StreamNameRegistry {
  readonly #store: EventStore;
  readonly #registryDomain: string;
  readonly #pageSize: number | undefined;
  readonly #byName = new Map<string, Registration>();
  /** How many registrations have been read (the registry instance's version as far as known). */
  #version = 0;
  /** Catch-ups and registrations run one at a time, so one registry never conflicts with itself. */
  #tail: Promise<unknown> = Promise.resolve();

  constructor(store: EventStore, registryDomain: string, options: { pageSize?: number } = {}) {
    this.#store = store;
    this.#registryDomain = validateDomain(registryDomain);
    this.#pageSize = options.pageSize;
  }

  get registryDomain(): string {
    return this.#registryDomain;
  }

  /** Registrations read so far. */
  get size(): number {
    return this.#byName.size;
  }

  /** The name's aggregate type and id, or undefined when it was never registered. Appends nothing. */
  async lookup(streamName: string): Promise<Registration | undefined> {
    validateStreamName(streamName);
    const known = this.#byName.get(streamName);
    if (known !== undefined) return known;
    return this.#exclusive(async () => {
      await this.#catchUp();
      return this.#byName.get(streamName);
    });
  }

  /**
   * The name's aggregate type and id, registering it first when it is new. `aggregateType` is used
   * only for a new registration: a registered name keeps the type it was registered with.
   */
  async resolve(streamName: string, aggregateType: () => string): Promise<Registration> {
    validateStreamName(streamName);
    const known = this.#byName.get(streamName);
    if (known !== undefined) return known;
    return this.#exclusive(async () => {
      for (let attempt = 1; ; attempt++) {
        await this.#catchUp();
        const found = this.#byName.get(streamName);
        if (found !== undefined) return found;
        const type = validateAggregateType(aggregateType());
        const data = JSON.stringify({ streamName, aggregateType: type });
        try {
          const result = await this.#store.put(
            this.#registryDomain,
            REGISTRY_AGGREGATE_TYPE,
            REGISTRY_ID,
            [{ type: STREAM_REGISTERED, data }],
            { expectedVersion: this.#version },
          );
          return this.#record(result.firstVersion, streamName, type);
        } catch (err) {
          if (!hasCode(err, 'VERSION_CONFLICT') || attempt >= MAX_REGISTRATION_ATTEMPTS) throw err;
        }
      }
    });
  }

  #exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(task, task);
    this.#tail = run.catch(() => undefined);
    return run;
  }

  /** Reads the registrations appended since the last read. */
  async #catchUp(): Promise<void> {
    const stream = instanceStream(this.#store, this.#registryDomain, REGISTRY_AGGREGATE_TYPE, REGISTRY_ID, {
      fromVersion: this.#version + 1,
      pageSize: this.#pageSize,
      // Live: a registration that just beat ours must be seen, whatever generation this store
      // object has observed (an HTTP client knows only the generations its own calls returned).
      atGeneration: 'live',
    });
    for await (const event of stream) {
      if (event.version !== this.#version + 1) {
        throw new RingStoreError('CORRUPT_DATA', `stream registry: expected version ${this.#version + 1}`, {
          version: event.version,
        });
      }
      const { streamName, aggregateType } = parseRegistration(event.version, event.type, event.data);
      this.#record(event.version, streamName, aggregateType);
    }
  }

  #record(version: number, streamName: string, aggregateType: string): Registration {
    this.#version = version;
    // First registration wins. The registry appends a name only after reading every earlier
    // registration, so a second one can only come from a writer that bypassed it.
    const existing = this.#byName.get(streamName);
    if (existing !== undefined) return existing;
    const registration = { aggregateType, id: BigInt(version) };
    this.#byName.set(streamName, registration);
    return registration;
  }
}

function parseRegistration(
  version: number,
  type: string,
  data: Uint8Array,
): { streamName: string; aggregateType: string } {
  let parsed: unknown;
  try {
    parsed = type === STREAM_REGISTERED ? JSON.parse(decoder.decode(data)) : undefined;
  } catch {
    parsed = undefined;
  }
  const record = parsed as { streamName?: unknown; aggregateType?: unknown } | undefined;
  if (typeof record?.streamName !== 'string' || typeof record.aggregateType !== 'string') {
    throw new RingStoreError(
      'CORRUPT_DATA',
      `stream registry: version ${version} (${type}) is not a stream registration`,
      { version },
    );
  }
  return { streamName: record.streamName, aggregateType: record.aggregateType };
}

/** One registry per (store, registry domain), shared by every adapter over that store in a process. */
const registries = new WeakMap<EventStore, Map<string, StreamNameRegistry>>();

export function sharedStreamNameRegistry(store: EventStore, registryDomain: string): StreamNameRegistry {
  let byDomain = registries.get(store);
  if (byDomain === undefined) {
    byDomain = new Map();
    registries.set(store, byDomain);
  }
  let registry = byDomain.get(registryDomain);
  if (registry === undefined) {
    registry = new StreamNameRegistry(store, registryDomain);
    byDomain.set(registryDomain, registry);
  }
  return registry;
}
