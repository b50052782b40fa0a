import type { WireError } from '../errors.js';
import type { Durability, ExpectedVersion, PutResult } from '../types.js';
import type { Checkpoint } from './checkpoint.js';

/**
 * The contract between whoever drives appends (the writer thread, or StorageEngine in-process) and
 * the storage layer. Batches arrive validated: names checked, CRCs computed and verified.
 */
export interface AppendEvent {
  type: string;
  /** May be a view into the ring's SharedArrayBuffer: the storage layer copies what it keeps. */
  data: Uint8Array;
  /** Length 0 when the event has none. May be a view into the ring's SharedArrayBuffer, as data. */
  metadata: Uint8Array;
  /**
   * CRC-32/IEEE of data followed by metadata, already verified: `crc32(metadata, crc32(data))` with
   * src/model/crc.ts, so identical to the CRC of data alone when metadata is empty.
   */
  crc: number;
}

/**
 * The events of one batch read by index, without an object per event: how the writer thread hands
 * over a batch that lies in the ring (src/pipeline/batch-codec.ts), so that the storage layer reads
 * each event's lengths, type and CRC from the ring and copies all payloads with one copy.
 */
export interface EventList {
  readonly length: number;
  type(index: number): string;
  dataBytes(index: number): number;
  metadataBytes(index: number): number;
  /** As AppendEvent.crc: of data then metadata, already verified. */
  crc(index: number): number;
  /** Copies every event's data then metadata, in event order, to `target` at `at`; returns the bytes. */
  copyPayloads(target: Uint8Array, at: number): number;
}

export interface AppendBatch {
  domain: string;
  aggregateType: string;
  aggregateId: bigint;
  expectedVersion: ExpectedVersion;
  idempotencyKey: string | undefined;
  /** An array of events, or an EventList (see event-list.ts for reading either). */
  events: readonly AppendEvent[] | EventList;
}

/** The generation and timestamp a replicated commit carries (StorageWriter.append with a stamp). */
export interface GenerationStamp {
  generation: number;
  timestamp: number;
}

/** One stored batch as its index record describes it (StorageReader.batches). */
export interface BatchHead {
  firstPosition: number;
  eventCount: number;
  aggregateType: string;
  aggregateId: bigint;
  firstVersion: number;
  generation: number;
  timestamp: number;
  idempotencyKey: string | undefined;
}

/** Where a domain's log ends. */
export interface DomainTip {
  /** The position the next event gets (the number of events in the domain). */
  nextPosition: number;
  lastGeneration: number;
  lastTimestamp: number;
}

/**
 * What a cluster's decisions read and its replicas write (StorageEngine in process, the writer
 * thread's ReplicatedWriter): the state an owner decides a generation against, and the apply of a
 * generation decided by a domain's owner (StorageWriter.append with a stamp).
 */
export interface GenerationApplier {
  /** An instance's current version, as the writer has it (0 when it has no events). */
  version(domain: string, aggregateType: string, id: bigint): number;
  /** The result of an instance's earlier put with this idempotency key, when there was one. */
  keyedResult(domain: string, aggregateType: string, id: bigint, key: string): PutResult | undefined;
  tip(domain: string): DomainTip;
  /** Commits one generation with the stamp's number and timestamp; calls commit in call order. */
  applyGeneration(batches: readonly AppendBatch[], stamp: GenerationStamp): Promise<AppendReport>;
}

/** One outcome per batch, in the order given. A rejected batch appends nothing and costs no position. */
export type AppendOutcome = { ok: true; result: PutResult } | { ok: false; error: WireError };

/**
 * Everything a StorageReader (possibly in another thread) needs to bring its in-memory index up to
 * date after one append call: the bytes appended to each domain's registry and index files.
 * It is structured-clone friendly (plain objects and Uint8Arrays).
 */
export interface CommitDelta {
  /** The last generation committed by this call (unchanged if nothing was appended). */
  generation: number;
  domains: DomainDelta[];
}

export interface DomainDelta {
  domain: string;
  /** Registry records appended by this call, in file order (may be empty). */
  registryBytes: Uint8Array;
  /** The index file offset at which indexBytes starts. */
  indexOffset: number;
  /** Index records appended by this call, in file order. */
  indexBytes: Uint8Array;
  /** The checkpoint written after this call's records, when one was (docs/FORMAT.md, "Checkpoint"). */
  checkpoint?: Checkpoint;
}

/**
 * One bounded cache's size and use since open: the index block caches (bytes) and the writer's
 * instance cache (entries).
 */
export interface CacheStats {
  /** 'writer-index' | 'reader-index' | 'reader-records' | 'instances'. */
  cache: string;
  /** Bytes held (index caches) or instance states held (instances). */
  size: number;
  capacity: number;
  unit: 'bytes' | 'entries';
  hits: number;
  misses: number;
}

export interface AppendReport {
  outcomes: AppendOutcome[];
  delta: CommitDelta;
  /** Durability reached for the appended batches. */
  durability: Durability;
  /** fsync calls made by this append (0 unless durability is 'fsync'). */
  fsyncs: number;
  /** Duration in seconds of each fsync/fdatasync this append made, in order. */
  syncSeconds: number[];
  /** Events, event data bytes and generations this append added. */
  appendedEvents: number;
  appendedBytes: number;
  generations: number;
  /** The writer's caches after this append. */
  caches: CacheStats[];
}
