/** Public types of ringstore's data model (DESIGN.md §1), shared by every store implementation. */

/**
 * An event as a producer hands it in. `data` and `metadata` are opaque bytes (a string is stored as
 * its UTF-8 bytes); absent means empty. Metadata is for what describes the event rather than the
 * domain fact (event, correlation and causation ids, as KurrentDB's metadata or Kafka's headers).
 */
export interface EventInput {
  type: string;
  data?: Uint8Array | string;
  /** At most LIMITS.maxEventMetadataBytes (65,535) bytes, stored beside the data and returned by every read. */
  metadata?: Uint8Array | string;
  /**
   * CRC-32/IEEE of the event's data followed by its metadata (`crc32(metadata, crc32(data))` with
   * src/model/crc.ts; the CRC of `data` alone when there is no metadata), as the producer computed it.
   * The store rejects the batch if it differs.
   */
  crc?: number;
}

/** An event after validation: data and metadata normalised to bytes (empty when absent). */
export interface ValidEvent {
  type: string;
  data: Uint8Array;
  metadata: Uint8Array;
  /** As supplied (see EventInput.crc), unsigned. */
  crc?: number;
}

export type ExpectedVersion = number | 'any' | 'none' | 'exists';

export type Durability = 'fsync' | 'write' | 'none';

export interface PutOptions {
  /** 'any' (default), 'none' (same as 0: the instance must not exist), 'exists', or an exact version. */
  expectedVersion?: ExpectedVersion;
  /** A retried put with the same key on the same instance returns the original result, appends nothing. */
  idempotencyKey?: string;
}

export interface PutResult {
  firstVersion: number;
  lastVersion: number;
  firstPosition: number;
  generation: number;
  timestamp: number;
  /** The durability level reached before the put resolved. */
  durability: Durability;
  /** True when an idempotency key matched an earlier put and nothing was appended. */
  replayed: boolean;
}

export interface StoredEvent {
  domain: string;
  aggregateType: string;
  aggregateId: bigint;
  version: number;
  position: number;
  generation: number;
  timestamp: number;
  type: string;
  data: Uint8Array;
  /** The event's metadata; empty when it had none. */
  metadata: Uint8Array;
  /** CRC-32/IEEE of data followed by metadata (of data alone when metadata is empty). */
  crc: number;
}

export interface GetOptions {
  /**
   * 'forward' (default): ascending versions. 'backward': descending versions, from `fromVersion`
   * (default: the instance's version) down to `toVersion` (default 1).
   */
  direction?: 'forward' | 'backward';
  /** First version to return, inclusive (forward default 1; backward default the latest). */
  fromVersion?: number;
  /** Last version to return, inclusive (forward default the latest; backward default 1). */
  toVersion?: number;
  limit?: number;
  /** Only events of generations <= atGeneration: a consistent cut across instances and domains. */
  atGeneration?: number;
  /** Re-check each event's CRC against its data; CORRUPT_DATA on mismatch. */
  verifyCrc?: boolean;
}

export interface InstanceEvents {
  /** The instance's version (at atGeneration, when given): 0 before any event. */
  version: number;
  events: StoredEvent[];
}

export interface ReadOptions {
  /** First position to consider, inclusive (default 0). */
  fromPosition?: number;
  limit?: number;
  /** Only events whose type is in this set. */
  types?: readonly string[];
  /** Only events with timestamp >= fromTime (ms since epoch). */
  fromTime?: number;
  /** Only events with timestamp <= toTime (ms since epoch). */
  toTime?: number;
  atGeneration?: number;
  verifyCrc?: boolean;
}

export interface DomainReadResult {
  events: StoredEvent[];
  /** Where the next read should start to continue this one without gap or duplicate. */
  nextPosition: number;
}
