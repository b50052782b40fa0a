import { randomUUID } from 'node:crypto';
import {
  type AggregateStreamOptions,
  type AggregateStreamResult,
  type AppendToStreamOptions,
  type AppendToStreamResultWithGlobalPosition,
  assertExpectedVersionMatchesCurrent,
  downcastRecordedMessage,
  type EventStore as EmmettEventStore,
  type ReadStreamOptions as EmmettReadStreamOptions,
  type Event,
  type ExpectedStreamVersion,
  ExpectedVersionConflictError,
  NO_CONCURRENCY_CHECK,
  type ReadEvent,
  type ReadEventMetadataWithGlobalPosition,
  type ReadStreamResult,
  STREAM_DOES_NOT_EXIST,
  STREAM_EXISTS,
  upcastRecordedMessage,
} from '@event-driven-io/emmett';
import { hasCode, RingStoreError } from '../errors.js';
import { validateDomain } from '../model/names.js';
import type { EventInput, ExpectedVersion, StoredEvent } from '../types.js';
import type { EventStore } from './event-store.js';
import { type StreamAddress, sharedStreamNameRegistry, validateStreamName } from './stream-name-registry.js';
import { instanceStream, validatePageSize } from './streams.js';

/**
 * An emmett `EventStore` over any ringstore store (the embedded RingStore or StorageEngine, the HTTP
 * client, MemoryEventStore). Stream names map to ringstore instances through a durable registry
 * kept in the store (src/api/stream-name-registry.ts). Event data and metadata are stored as JSON
 * text; the metadata also carries emmett's `messageId`. Reading gives each event emmett's metadata:
 * `streamName`, `messageId`, `streamPosition` (the ringstore version, from 1) and `globalPosition`
 * (the ringstore position in the adapter's domain, from 0).
 */

export interface RingStoreEmmettOptions {
  /** The ringstore domain holding the streams' events (default 'emmett'). */
  domain?: string;
  /** The domain holding the stream-name registry (default `${domain}-streams`). */
  registryDomain?: string;
  /**
   * The aggregate type a new stream name is registered under (default: 'stream' for every name).
   * Must match ringstore's aggregate type names; decided once per name, when it is registered.
   */
  aggregateType?: (streamName: string) => string;
  /** Events per store.get while reading a stream (default 1000). */
  pageSize?: number;
}

export type RingStoreReadEventMetadata = ReadEventMetadataWithGlobalPosition;

export type RingStoreReadEvent<EventType extends Event = Event> = ReadEvent<
  EventType,
  RingStoreReadEventMetadata
>;

export interface RingStoreEmmettEventStore extends EmmettEventStore<RingStoreReadEventMetadata> {
  /** As emmett's, and also the global position of the last event appended. */
  appendToStream<EventType extends Event, EventPayloadType extends Event = EventType>(
    streamName: string,
    events: EventType[],
    options?: AppendToStreamOptions<bigint, EventType, EventPayloadType>,
  ): Promise<AppendToStreamResultWithGlobalPosition<bigint, bigint>>;
  /** The ringstore store underneath. */
  readonly store: EventStore;
  /** The ringstore domain holding the streams' events. */
  readonly domain: string;
  /** Where a stream name's events live, or undefined when the name was never registered. */
  streamAddress(streamName: string): Promise<StreamAddress | undefined>;
}

/** The stream version of a stream with no events, as in emmett's own stores. */
export const RingStoreEmmettDefaultStreamVersion = 0n;

const DEFAULT_DOMAIN = 'emmett';
const DEFAULT_AGGREGATE_TYPE = 'stream';
/** Keys of emmett's read metadata: the store sets them on read and never stores them. */
const SYSTEM_METADATA_KEYS: ReadonlySet<string> = new Set([
  'streamName',
  'streamPosition',
  'globalPosition',
  'messageId',
]);

const decoder = new TextDecoder('utf-8', { fatal: true });

export function getRingStoreEventStore(
  store: EventStore,
  options: RingStoreEmmettOptions = {},
): RingStoreEmmettEventStore {
  const domain = validateDomain(options.domain ?? DEFAULT_DOMAIN);
  const registryDomain = options.registryDomain ?? `${domain}-streams`;
  if (registryDomain === domain) {
    throw new RingStoreError('INVALID_OPTION', 'registryDomain must differ from domain', {
      option: 'registryDomain',
    });
  }
  const registry = sharedStreamNameRegistry(store, validateDomain(registryDomain));
  const aggregateTypeOf = options.aggregateType ?? (() => DEFAULT_AGGREGATE_TYPE);
  const pageSize = validatePageSize(options.pageSize);

  async function address(streamName: string): Promise<StreamAddress | undefined> {
    const found = await registry.lookup(streamName);
    return found === undefined ? undefined : { domain, ...found };
  }

  async function currentVersion(streamName: string): Promise<bigint> {
    const found = await registry.lookup(streamName);
    if (found === undefined) return RingStoreEmmettDefaultStreamVersion;
    const { version } = await store.get(domain, found.aggregateType, found.id, { limit: 0 });
    return BigInt(version);
  }

  async function readStream<EventType extends Event, EventPayloadType extends Event = EventType>(
    streamName: string,
    readOptions?: EmmettReadStreamOptions<bigint, EventType, EventPayloadType>,
  ): Promise<ReadStreamResult<EventType, RingStoreReadEventMetadata>> {
    const range = toVersionRange(readOptions);
    const found = await registry.lookup(streamName);
    const events: RingStoreReadEvent<EventType>[] = [];
    let version = 0;
    if (found !== undefined) {
      // Live, not pinned to store.generation: an HTTP client's generation is the newest it has
      // seen, which can lag behind other writers. Paging live still ends at the newest version seen,
      // so an unbounded read folds every event up to currentStreamVersion.
      const stream = instanceStream(store, domain, found.aggregateType, found.id, {
        ...range,
        pageSize,
        atGeneration: 'live',
      });
      for await (const stored of stream) {
        events.push(
          upcastRecordedMessage<EventType, EventPayloadType, RingStoreReadEventMetadata>(
            toReadEvent<EventPayloadType>(streamName, stored),
            readOptions?.schema?.versioning,
          ),
        );
      }
      // A stream whose range was empty never read a page: ask for the version.
      version =
        stream.instanceVersion ??
        (await store.get(domain, found.aggregateType, found.id, { limit: 0 })).version;
    }
    const currentStreamVersion = BigInt(version);
    assertExpectedVersionMatchesCurrent(
      currentStreamVersion,
      readOptions?.expectedStreamVersion,
      RingStoreEmmettDefaultStreamVersion,
    );
    return { currentStreamVersion, events, streamExists: version > 0 };
  }

  const eventStore: RingStoreEmmettEventStore = {
    store,
    domain,
    streamAddress: address,

    readStream,

    async aggregateStream<State, EventType extends Event, EventPayloadType extends Event = EventType>(
      streamName: string,
      aggregateOptions: AggregateStreamOptions<
        State,
        EventType,
        RingStoreReadEventMetadata,
        EventPayloadType
      >,
    ): Promise<AggregateStreamResult<State, bigint>> {
      const { evolve, initialState, read } = aggregateOptions;
      const result = await readStream<EventType, EventPayloadType>(streamName, read);
      const fold = evolve as (state: State, event: RingStoreReadEvent<EventType>) => State;
      let state = initialState();
      for (const event of result.events) state = fold(state, event);
      return {
        currentStreamVersion: result.currentStreamVersion,
        state,
        streamExists: result.streamExists,
      };
    },

    async appendToStream<EventType extends Event, EventPayloadType extends Event = EventType>(
      streamName: string,
      events: EventType[],
      appendOptions?: AppendToStreamOptions<bigint, EventType, EventPayloadType>,
    ): Promise<AppendToStreamResultWithGlobalPosition<bigint, bigint>> {
      validateStreamName(streamName);
      if (!Array.isArray(events) || events.length === 0) {
        throw new RingStoreError('INVALID_BATCH', 'appendToStream needs at least one event');
      }
      const expected = appendOptions?.expectedStreamVersion ?? NO_CONCURRENCY_CHECK;
      const expectedVersion = toExpectedVersion(expected);
      const inputs = events.map((event) =>
        toEventInput(
          downcastRecordedMessage<EventType, EventPayloadType>(event, appendOptions?.schema?.versioning),
        ),
      );
      if (expectedVersion === undefined) {
        // A negative or unreachable version can never match: emmett's conflict, nothing registered.
        throw new ExpectedVersionConflictError(await currentVersion(streamName), expected);
      }
      // Only an append that may create the stream registers its name; one that requires the stream
      // to exist fails on an unregistered name without growing the registry.
      const mayCreate = expectedVersion === 'any' || expectedVersion === 'none' || expectedVersion === 0;
      const found = mayCreate
        ? await registry.resolve(streamName, () => aggregateTypeOf(streamName))
        : await registry.lookup(streamName);
      if (found === undefined) {
        throw new ExpectedVersionConflictError(RingStoreEmmettDefaultStreamVersion, expected);
      }
      try {
        const result = await store.put(domain, found.aggregateType, found.id, inputs, { expectedVersion });
        return {
          nextExpectedStreamVersion: BigInt(result.lastVersion),
          createdNewStream: result.firstVersion === 1,
          lastEventGlobalPosition: BigInt(result.firstPosition + inputs.length - 1),
        };
      } catch (err) {
        if (!hasCode(err, 'VERSION_CONFLICT')) throw err;
        const actual = (err as RingStoreError).details.actualVersion;
        const current = typeof actual === 'number' ? BigInt(actual) : await currentVersion(streamName);
        throw new ExpectedVersionConflictError(current, expected);
      }
    },

    async streamExists(streamName: string): Promise<boolean> {
      return (await currentVersion(streamName)) > RingStoreEmmettDefaultStreamVersion;
    },
  };
  return eventStore;
}

/**
 * emmett's expected stream version as ringstore's: undefined when no stream version can match it
 * (negative, or beyond the safe integers ringstore versions stay within).
 */
function toExpectedVersion(expected: ExpectedStreamVersion<bigint>): ExpectedVersion | undefined {
  if (expected === NO_CONCURRENCY_CHECK) return 'any';
  if (expected === STREAM_DOES_NOT_EXIST) return 'none';
  if (expected === STREAM_EXISTS) return 'exists';
  if (typeof expected === 'bigint' || typeof expected === 'number') {
    const version = Number(expected);
    return Number.isSafeInteger(version) && version >= 0 && BigInt(version) === BigInt(expected)
      ? version
      : undefined;
  }
  throw new RingStoreError(
    'INVALID_VERSION',
    'expectedStreamVersion must be a bigint, STREAM_EXISTS, STREAM_DOES_NOT_EXIST or NO_CONCURRENCY_CHECK',
  );
}

/** A stream position as a ringstore version bound: clamped to 0 … MAX_SAFE_INTEGER. */
function versionBound(value: bigint | number): number {
  const big = BigInt(value);
  if (big <= 0n) return 0;
  return big >= BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(big);
}

/**
 * emmett's read range: `from` and `to` are stream positions, both inclusive (`from` 0 or absent:
 * from the first event); `maxCount` caps how many events are returned (0 or absent: no cap).
 */
function toVersionRange(options: { from?: bigint; to?: bigint; maxCount?: bigint } | undefined): {
  fromVersion?: number;
  toVersion?: number;
  limit?: number;
} {
  const range: { fromVersion?: number; toVersion?: number; limit?: number } = {};
  if (options?.from !== undefined) range.fromVersion = versionBound(options.from);
  if (options?.to !== undefined) range.toVersion = versionBound(options.to);
  if (options?.maxCount !== undefined) {
    if (BigInt(options.maxCount) < 0n) {
      throw new RingStoreError('INVALID_QUERY', 'maxCount must not be negative', { option: 'maxCount' });
    }
    if (BigInt(options.maxCount) > 0n) range.limit = versionBound(options.maxCount);
  }
  return range;
}

function jsonText(what: string, type: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new RingStoreError('INVALID_EVENT', `event ${type}: ${what} is not JSON-serialisable (${err})`);
  }
  if (text === undefined) {
    throw new RingStoreError('INVALID_EVENT', `event ${type}: ${what} is not JSON-serialisable`);
  }
  return text;
}

/** data as JSON text; metadata as JSON text of the event's own metadata plus a new messageId. */
function toEventInput(event: Event): EventInput {
  const own = 'metadata' in event && typeof event.metadata === 'object' && event.metadata !== null;
  const metadata: Record<string, unknown> = {};
  if (own) {
    for (const [key, value] of Object.entries(event.metadata as Record<string, unknown>)) {
      if (!SYSTEM_METADATA_KEYS.has(key)) metadata[key] = value;
    }
  }
  metadata.messageId = randomUUID();
  const input: EventInput = { type: event.type, metadata: jsonText('metadata', event.type, metadata) };
  const data = jsonText('data', event.type, event.data);
  if (data !== undefined) input.data = data;
  return input;
}

function parseJson(what: string, stored: StoredEvent, bytes: Uint8Array): unknown {
  if (bytes.byteLength === 0) return undefined;
  try {
    return JSON.parse(decoder.decode(bytes));
  } catch {
    throw new RingStoreError(
      'INVALID_EVENT',
      `event at version ${stored.version} (${stored.type}): ${what} is not UTF-8 JSON`,
      { version: stored.version },
    );
  }
}

function toReadEvent<EventType extends Event>(
  streamName: string,
  stored: StoredEvent,
): RingStoreReadEvent<EventType> {
  const parsed = parseJson('metadata', stored, stored.metadata);
  const own: Record<string, unknown> =
    typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : {};
  const { messageId, ...rest } = own;
  const metadata = {
    ...rest,
    // Events appended through ringstore's own API have no messageId: one derived from the
    // position is unique in the store and stable across reads.
    messageId: typeof messageId === 'string' ? messageId : `ringstore:${stored.domain}:${stored.position}`,
    streamName,
    streamPosition: BigInt(stored.version),
    globalPosition: BigInt(stored.position),
  };
  return {
    type: stored.type,
    data: parseJson('data', stored, stored.data),
    metadata,
    kind: 'Event',
  } as unknown as RingStoreReadEvent<EventType>;
}
