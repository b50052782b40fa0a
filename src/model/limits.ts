/** Every size and count limit of the data model (DESIGN.md §1), in one place. */
export const LIMITS = Object.freeze({
  /** Largest event payload: the u16 length field of the event header. */
  maxEventDataBytes: 65_535,
  /** Largest event metadata: a u16 length, as the payload's. */
  maxEventMetadataBytes: 65_535,
  /** Most events in one put (one batch). */
  maxEventsPerBatch: 10_000,
  /** Most payload bytes (data and metadata together) in one put (one batch). */
  maxBatchDataBytes: 4 * 1024 * 1024,
  /** Longest idempotency key, in UTF-8 bytes. */
  maxIdempotencyKeyBytes: 64,
  /** Most distinct names of one kind (event types, aggregate types) per domain: u16 codes. */
  maxRegisteredNames: 65_535,
  /** Largest aggregate id: ids are unsigned 64-bit, 0 is not an id. */
  maxAggregateId: (1n << 64n) - 1n,
  /** Largest version / position / count accepted anywhere. */
  maxSafeInteger: Number.MAX_SAFE_INTEGER,
  /** Most events one read returns when no limit is given. */
  defaultReadLimit: 1_000,
  /** Most events one read may ask for. */
  maxReadLimit: 100_000,
});

/** Target size of one generation in bytes of encoded batch data (original notes: a 4 KiB page). */
export const DEFAULT_GENERATION_BYTES = 4096;
