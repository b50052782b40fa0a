import { crc32 } from '../crc.js';
import { RingStoreError, versionConflict } from '../errors.js';
import { expectedVersionMatches } from '../model/events.js';
import { DEFAULT_GENERATION_BYTES, LIMITS } from '../model/limits.js';
import { EVENT_TYPE_PATTERN, STORAGE_NAME_PATTERN } from '../model/names.js';
import { packGenerations } from '../pipeline/generation-packing.js';
import type { Durability, PutResult } from '../types.js';
import { type FileIO, realFileIO } from './file-io.js';
import {
  DEFAULT_SEGMENT_BYTES,
  domainDir,
  encodeRegistryRecord,
  INDEX_FILE,
  INDEX_MAGIC,
  type IndexRecord,
  indexRecordBytes,
  joinPath,
  KIND_AGGREGATE_TYPE,
  KIND_EVENT_TYPE,
  MAX_SEGMENT_BYTES,
  type NameKindCode,
  REGISTRY_FILE,
  registryRecordBytes,
  segmentFileName,
  writeU53,
} from './format.js';
import { NameRegistry } from './name-registry.js';
import { type RecoveryAction, recoverDomain } from './recovery.js';
import type { AppendBatch, AppendOutcome, AppendReport, CommitDelta, DomainDelta } from './types.js';

export interface StorageWriterOptions {
  io?: FileIO;
  /** Source of timestamps (ms); the writer never lets them decrease. Default Date.now. */
  clock?: () => number;
  /** Most encoded batch bytes per generation (default 4096). */
  generationBytes?: number;
  /** Size at which a data segment is rolled (default 64 MiB). */
  segmentBytes?: number;
}

interface InstanceState {
  version: number;
  /** Results of puts that carried an idempotency key, by key. */
  keys: Map<string, PutResult> | undefined;
}

interface AggregateTypeState {
  name: string;
  code: number;
  /** Segment being appended to and where its data ends (as the index knows it). */
  segment: number;
  end: number;
  fd: number;
  fdSegment: number;
  /** The data target of the current append call, if this call touches the type. */
  target: DataTarget | undefined;
  instances: Map<bigint, InstanceState>;
}

interface DomainState {
  name: string;
  folder: string;
  folderExists: boolean;
  registry: NameRegistry;
  registryEnd: number;
  indexEnd: number;
  nextPosition: number;
  aggregateTypes: AggregateTypeState[];
  registryFd: number;
  indexFd: number;
  // Per append call:
  pendingNames: { kind: NameKindCode; code: number; name: string }[];
  pendingIndexBytes: number;
  indexBuffer: Uint8Array;
  indexView: DataView;
  indexCursor: number;
  inCall: boolean;
}

/** The bytes one append call adds to one data segment file. */
interface DataTarget {
  domain: DomainState;
  aggregateType: AggregateTypeState;
  segment: number;
  fileStart: number;
  length: number;
  arenaOffset: number;
}

interface AcceptedBatch {
  /** Position of the batch in the append call. */
  index: number;
  batch: AppendBatch;
  domain: DomainState;
  aggregateType: AggregateTypeState;
  target: DataTarget;
  codesStart: number;
  dataOffset: number;
  /** Payload bytes of the batch. */
  dataLength: number;
  key: Uint8Array | undefined;
  result: PutResult;
}

const utf8 = new TextEncoder();
const NO_FD = -1;

/**
 * Applies batches to the files of a store directory (DESIGN.md §2 and §3). One StorageWriter owns
 * a directory: it is the single point that checks expected versions and idempotency keys, so its
 * decisions are linearisable.
 *
 * One append call:
 *   decide  per batch in order: idempotency key → expected version → registry room; later batches
 *           see earlier ones; a rejected batch costs nothing
 *   pack    accepted batches into generations (packGenerations), stamp generation and timestamp
 *   encode  index records per domain and payloads per data file into buffers
 *   write   registry records (+fsync when any) → data (one write per file) → index (one write per
 *           domain); with 'fsync', every data file is fdatasync'ed before any index byte is written
 *           and every index after, once for the whole call (group commit)
 *
 * Any write or fsync error fails the writer for good: fsync errors are never retried, because after
 * one the kernel may have dropped the dirty pages and a retry can report success over lost data.
 */
export class StorageWriter {
  readonly #root: string;
  readonly #io: FileIO;
  readonly #clock: () => number;
  readonly #generationBytes: number;
  readonly #segmentBytes: number;
  readonly #domains = new Map<string, DomainState>();
  readonly #recovery: RecoveryAction[];
  #generation = 0;
  #lastTimestamp = 0;
  #failure: RingStoreError | undefined;
  #closed = false;
  /** Files written since their last fsync (closed with an fsync). */
  readonly #dirty = new Set<number>();
  /** The data files among #dirty. */
  readonly #dirtyData = new Set<number>();
  // Reused across calls so the hot path does not allocate per event.
  #arena = new Uint8Array(1 << 20);
  #codes = new Uint16Array(4096);
  readonly #sizes: number[] = [];
  readonly #ends: number[] = [];
  /** Durations of the syncs of the current append call (seconds). */
  #syncSeconds: number[] = [];

  private constructor(root: string, io: FileIO, options: StorageWriterOptions) {
    this.#root = root;
    this.#io = io;
    this.#clock = options.clock ?? Date.now;
    this.#generationBytes = options.generationBytes ?? DEFAULT_GENERATION_BYTES;
    this.#segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    if (!(Number.isSafeInteger(this.#generationBytes) && this.#generationBytes > 0)) {
      throw new RingStoreError('INVALID_OPTION', 'generationBytes must be a positive integer', {
        option: 'generationBytes',
      });
    }
    if (
      !(
        Number.isSafeInteger(this.#segmentBytes) &&
        this.#segmentBytes > 0 &&
        this.#segmentBytes <= MAX_SEGMENT_BYTES
      )
    ) {
      throw new RingStoreError(
        'INVALID_OPTION',
        `segmentBytes must be an integer from 1 to ${MAX_SEGMENT_BYTES}`,
        {
          option: 'segmentBytes',
        },
      );
    }
    this.#recovery = [];
  }

  /** Opens (creating if needed) a store directory and runs recovery on every domain in it. */
  static open(dir: string, options: StorageWriterOptions = {}): StorageWriter {
    const io = options.io ?? realFileIO;
    const writer = new StorageWriter(dir, io, options);
    writer.#recoverAll();
    return writer;
  }

  /** The last generation written (0 before any). */
  get generation(): number {
    return this.#generation;
  }

  get lastTimestamp(): number {
    return this.#lastTimestamp;
  }

  get failed(): boolean {
    return this.#failure !== undefined;
  }

  /** What recovery changed on open (cut tails, removed unreferenced data). */
  get recovery(): readonly RecoveryAction[] {
    return this.#recovery;
  }

  /** The current version of an instance (0 when it has no events). */
  version(domain: string, aggregateType: string, id: bigint): number {
    const d = this.#domains.get(domain);
    const code = d?.registry.aggregateCode(aggregateType) ?? -1;
    if (!d || code < 0) return 0;
    return d.aggregateTypes[code]!.instances.get(id)?.version ?? 0;
  }

  append(batches: readonly AppendBatch[], durability: Durability): AppendReport {
    if (this.#closed) throw new RingStoreError('STORE_CLOSED');
    if (this.#failure) throw this.#failure;
    const outcomes: AppendOutcome[] = new Array(batches.length);
    const replays: { index: number; original: PutResult }[] = [];
    const accepted: AcceptedBatch[] = [];
    const touched: DomainState[] = [];
    const targets: DataTarget[] = [];
    let codesUsed = 0;

    for (let i = 0; i < batches.length; i++) {
      const batch = batches[i]!;
      const domain = this.#domains.get(batch.domain) ?? this.#newDomain(batch.domain);
      if (!domain) {
        outcomes[i] = { ok: false, error: invalidName('domain', batch.domain).toWire() };
        continue;
      }
      const shape = checkShape(batch);
      if (typeof shape !== 'number') {
        outcomes[i] = { ok: false, error: shape.toWire() };
        continue;
      }
      const dataLength = shape;
      const existingCode = domain.registry.aggregateCode(batch.aggregateType);
      const instance =
        existingCode >= 0 ? domain.aggregateTypes[existingCode]!.instances.get(batch.aggregateId) : undefined;
      if (batch.idempotencyKey !== undefined) {
        const original = instance?.keys?.get(batch.idempotencyKey);
        if (original) {
          replays.push({ index: i, original });
          continue;
        }
      }
      const actual = instance?.version ?? 0;
      if (!expectedVersionMatches(batch.expectedVersion, actual)) {
        outcomes[i] = { ok: false, error: versionConflict(actual, batch.expectedVersion).toWire() };
        continue;
      }
      const events = batch.events;
      if (codesUsed + events.length > this.#codes.length) {
        const grown = new Uint16Array(Math.max(this.#codes.length * 2, codesUsed + events.length));
        grown.set(this.#codes.subarray(0, codesUsed));
        this.#codes = grown;
      }
      const rejected = this.#registerNames(domain, batch, codesUsed);
      if (rejected) {
        outcomes[i] = { ok: false, error: rejected.toWire() };
        continue;
      }
      if (!domain.inCall) {
        domain.inCall = true;
        touched.push(domain);
      }
      const aggregateType = domain.aggregateTypes[domain.registry.aggregateCode(batch.aggregateType)]!;
      let state = instance ?? aggregateType.instances.get(batch.aggregateId);
      if (!state) {
        state = { version: 0, keys: undefined };
        aggregateType.instances.set(batch.aggregateId, state);
      }
      if (aggregateType.end > 0 && aggregateType.end + dataLength > this.#segmentBytes) {
        aggregateType.segment++;
        aggregateType.end = 0;
      }
      let target = aggregateType.target;
      if (!target || target.segment !== aggregateType.segment) {
        target = {
          domain,
          aggregateType,
          segment: aggregateType.segment,
          fileStart: aggregateType.end,
          length: 0,
          arenaOffset: 0,
        };
        aggregateType.target = target;
        targets.push(target);
      }
      const key = batch.idempotencyKey === undefined ? undefined : utf8.encode(batch.idempotencyKey);
      const result: PutResult = {
        firstVersion: actual + 1,
        lastVersion: actual + events.length,
        firstPosition: domain.nextPosition,
        generation: 0,
        timestamp: 0,
        durability,
        replayed: false,
      };
      accepted.push({
        index: i,
        batch,
        domain,
        aggregateType,
        target,
        codesStart: codesUsed,
        dataOffset: aggregateType.end,
        dataLength,
        key,
        result,
      });
      codesUsed += events.length;
      state.version += events.length;
      domain.nextPosition += events.length;
      aggregateType.end += dataLength;
      target.length += dataLength;
      const recordBytes = indexRecordBytes(key?.byteLength ?? 0, events.length);
      domain.pendingIndexBytes += recordBytes;
      this.#sizes.push(recordBytes + dataLength);
      if (batch.idempotencyKey !== undefined) {
        state.keys ??= new Map();
        state.keys.set(batch.idempotencyKey, result);
      }
    }

    const generationBefore = this.#generation;
    this.#syncSeconds = [];
    this.#stampGenerations(accepted);
    const reached: Durability = durability === 'fsync' ? 'fsync' : 'write';
    let fsyncs = 0;
    const delta: CommitDelta = { generation: this.#generation, domains: [] };
    try {
      this.#encode(accepted, touched, targets);
      if (accepted.length > 0) {
        fsyncs = this.#write(touched, targets, durability === 'fsync', delta);
      }
    } catch (err) {
      this.#fail(err);
    } finally {
      for (const target of targets) target.aggregateType.target = undefined;
      for (const domain of touched) {
        domain.inCall = false;
        domain.pendingNames.length = 0;
        domain.pendingIndexBytes = 0;
      }
      this.#sizes.length = 0;
    }
    for (const item of accepted) {
      item.result.durability = reached;
      // A keyed result is also kept for replays (state.keys), so the caller gets a copy of it.
      const result = item.key === undefined ? item.result : { ...item.result };
      outcomes[item.index] = { ok: true, result };
    }
    for (const { index, original } of replays) {
      outcomes[index] = { ok: true, result: { ...original, durability: reached, replayed: true } };
    }
    let appendedEvents = 0;
    let appendedBytes = 0;
    for (const item of accepted) {
      appendedEvents += item.batch.events.length;
      appendedBytes += item.dataLength;
    }
    return {
      outcomes,
      delta,
      durability: reached,
      fsyncs,
      syncSeconds: this.#syncSeconds,
      appendedEvents,
      appendedBytes,
      generations: this.#generation - generationBefore,
    };
  }

  /** Closes every file; unsynced writes are fsynced first unless the writer has failed. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const io = this.#io;
    let firstError: unknown;
    const closeFd = (fd: number) => {
      if (fd === NO_FD) return;
      try {
        if (this.#failure === undefined && this.#dirty.has(fd)) io.fsync(fd);
      } catch (err) {
        firstError ??= err;
      }
      try {
        io.close(fd);
      } catch (err) {
        firstError ??= err;
      }
    };
    for (const domain of this.#domains.values()) {
      for (const aggregateType of domain.aggregateTypes) closeFd(aggregateType.fd);
      closeFd(domain.indexFd);
      closeFd(domain.registryFd);
    }
    this.#dirty.clear();
    this.#dirtyData.clear();
    if (firstError !== undefined && this.#failure === undefined) this.#fail(firstError);
  }

  #recoverAll(): void {
    const io = this.#io;
    if (!io.exists(this.#root)) {
      io.mkdir(this.#root);
      io.fsyncDir(parentDir(this.#root));
    }
    for (const name of io.readdir(this.#root)) {
      if (!STORAGE_NAME_PATTERN.test(name) || !io.isDirectory(joinPath(this.#root, name))) continue;
      const domain = this.#newDomainState(name, true);
      const recovered = recoverDomain(io, this.#root, name, (record, bytes, view) =>
        this.#recoverRecord(domain, record, bytes, view),
      );
      this.#recovery.push(...recovered.actions);
      domain.registry = recovered.state.registry;
      domain.registryEnd = recovered.registryEnd;
      domain.indexEnd = recovered.indexEnd;
      domain.nextPosition = recovered.state.nextPosition;
      const names = domain.registry.aggregateTypes;
      for (let code = 0; code < names.length; code++) {
        const known = domain.aggregateTypes[code];
        if (known) known.name = names[code]!;
        else domain.aggregateTypes[code] = newAggregateTypeState(names[code]!, code);
      }
      for (const [code, end] of recovered.state.dataEnds) {
        domain.aggregateTypes[code]!.segment = end.segment;
        domain.aggregateTypes[code]!.end = end.end;
      }
      this.#generation = Math.max(this.#generation, recovered.state.lastGeneration);
      this.#lastTimestamp = Math.max(this.#lastTimestamp, recovered.state.lastTimestamp);
      this.#domains.set(name, domain);
    }
  }

  #recoverRecord(domain: DomainState, record: IndexRecord, _bytes: Uint8Array, _view: DataView): void {
    const code = record.aggregateTypeCode;
    // The scan has checked the code against the registry; #recoverAll fills in the names after.
    while (domain.aggregateTypes.length <= code) {
      domain.aggregateTypes.push(newAggregateTypeState('', domain.aggregateTypes.length));
    }
    const instances = domain.aggregateTypes[code]!.instances;
    let instance = instances.get(record.aggregateId);
    if (!instance) {
      instance = { version: 0, keys: undefined };
      instances.set(record.aggregateId, instance);
    }
    instance.version = record.firstVersion + record.eventCount - 1;
    if (record.idempotencyKey !== undefined) {
      instance.keys ??= new Map();
      instance.keys.set(record.idempotencyKey, {
        firstVersion: record.firstVersion,
        lastVersion: record.firstVersion + record.eventCount - 1,
        firstPosition: record.firstPosition,
        generation: record.generation,
        timestamp: record.timestamp,
        durability: 'fsync',
        replayed: false,
      });
    }
  }

  #newDomainState(name: string, folderExists: boolean): DomainState {
    return {
      name,
      folder: domainDir(this.#root, name),
      folderExists,
      registry: new NameRegistry(),
      registryEnd: 0,
      indexEnd: 0,
      nextPosition: 0,
      aggregateTypes: [],
      registryFd: NO_FD,
      indexFd: NO_FD,
      pendingNames: [],
      pendingIndexBytes: 0,
      indexBuffer: new Uint8Array(0),
      indexView: new DataView(new ArrayBuffer(0)),
      indexCursor: 0,
      inCall: false,
    };
  }

  /** State for a domain seen for the first time, or undefined when its name is not allowed. */
  #newDomain(name: string): DomainState | undefined {
    if (!STORAGE_NAME_PATTERN.test(name)) return undefined;
    const domain = this.#newDomainState(name, false);
    this.#domains.set(name, domain);
    return domain;
  }

  /**
   * Finds or registers the aggregate type and every event type of a batch, writing the event type
   * codes to #codes[codesStart…]. Returns an error (and registers nothing) when a new name is not
   * allowed or a registry is full.
   */
  #registerNames(domain: DomainState, batch: AppendBatch, codesStart: number): RingStoreError | undefined {
    const registry = domain.registry;
    const events = batch.events;
    const codes = this.#codes;
    let newEventTypes: string[] | undefined;
    for (let e = 0; e < events.length; e++) {
      const type = events[e]!.type;
      // Known types get their code now; only a batch with new types needs the second pass below.
      const code = registry.eventCode(type);
      codes[codesStart + e] = code;
      if (code >= 0 || newEventTypes?.includes(type)) continue;
      if (!EVENT_TYPE_PATTERN.test(type)) return invalidName('event type', type);
      newEventTypes ??= [];
      newEventTypes.push(type);
    }
    const newAggregateType = registry.aggregateCode(batch.aggregateType) < 0;
    if (newAggregateType && !STORAGE_NAME_PATTERN.test(batch.aggregateType)) {
      return invalidName('aggregate type', batch.aggregateType);
    }
    if (
      (newEventTypes && !registry.hasRoom(KIND_EVENT_TYPE, newEventTypes.length)) ||
      (newAggregateType && !registry.hasRoom(KIND_AGGREGATE_TYPE, 1))
    ) {
      return new RingStoreError(
        'TOO_MANY_TYPES',
        `domain ${domain.name} cannot register more names: the registry holds 65535 of one kind`,
      );
    }
    if (newAggregateType) {
      const code = registry.add(KIND_AGGREGATE_TYPE, batch.aggregateType);
      domain.pendingNames.push({ kind: KIND_AGGREGATE_TYPE, code, name: batch.aggregateType });
      domain.aggregateTypes[code] = newAggregateTypeState(batch.aggregateType, code);
    }
    if (newEventTypes) {
      for (const name of newEventTypes) {
        const code = registry.add(KIND_EVENT_TYPE, name);
        domain.pendingNames.push({ kind: KIND_EVENT_TYPE, code, name });
      }
      for (let e = 0; e < events.length; e++) codes[codesStart + e] = registry.eventCode(events[e]!.type);
    }
    return undefined;
  }

  /** Cuts accepted batches into generations and stamps each with its number and timestamp. */
  #stampGenerations(accepted: AcceptedBatch[]): void {
    const ends = packGenerations(this.#sizes, this.#generationBytes, accepted.length, this.#ends);
    let start = 0;
    for (const end of ends) {
      const generation = ++this.#generation;
      // Written as this form so that a clock returning NaN or a negative value cannot stamp it.
      const now = Math.floor(this.#clock());
      const timestamp =
        now > this.#lastTimestamp && now <= Number.MAX_SAFE_INTEGER ? now : this.#lastTimestamp;
      this.#lastTimestamp = timestamp;
      for (let i = start; i < end; i++) {
        accepted[i]!.result.generation = generation;
        accepted[i]!.result.timestamp = timestamp;
      }
      start = end;
    }
  }

  /** Lays out this call's bytes: index records per domain, payloads per data file in the arena. */
  #encode(accepted: AcceptedBatch[], touched: DomainState[], targets: DataTarget[]): void {
    let arenaBytes = 0;
    for (const target of targets) {
      target.arenaOffset = arenaBytes;
      arenaBytes += target.length;
    }
    if (arenaBytes > this.#arena.byteLength) {
      this.#arena = new Uint8Array(Math.max(arenaBytes, this.#arena.byteLength * 2));
    }
    for (const domain of touched) {
      domain.indexBuffer = new Uint8Array(domain.pendingIndexBytes);
      domain.indexView = new DataView(domain.indexBuffer.buffer);
      domain.indexCursor = 0;
    }
    const arena = this.#arena;
    const codes = this.#codes;
    for (const item of accepted) {
      const { batch, domain, target, result } = item;
      const events = batch.events;
      const count = events.length;
      const keyLength = item.key?.byteLength ?? 0;
      const bytes = domain.indexBuffer;
      const view = domain.indexView;
      const start = domain.indexCursor;
      const length = indexRecordBytes(keyLength, count);
      view.setUint32(start, length, true);
      view.setUint32(start + 4, INDEX_MAGIC, true);
      writeU53(view, start + 8, result.firstPosition);
      view.setBigUint64(start + 16, batch.aggregateId, true);
      writeU53(view, start + 24, result.firstVersion);
      writeU53(view, start + 32, result.generation);
      writeU53(view, start + 40, result.timestamp);
      view.setUint32(start + 48, target.segment, true);
      view.setUint32(start + 52, item.dataOffset, true);
      view.setUint32(start + 60, count, true);
      view.setUint16(start + 64, item.aggregateType.code, true);
      bytes[start + 66] = keyLength;
      bytes[start + 67] = 0;
      if (item.key) bytes.set(item.key, start + 68);
      let header = start + 68 + keyLength;
      let dataAt = target.arenaOffset + (item.dataOffset - target.fileStart);
      let dataLength = 0;
      for (let e = 0; e < count; e++) {
        const event = events[e]!;
        const size = event.data.byteLength;
        view.setUint16(header, size, true);
        view.setUint16(header + 2, codes[item.codesStart + e]!, true);
        view.setUint32(header + 4, event.crc, true);
        header += 8;
        arena.set(event.data, dataAt);
        dataAt += size;
        dataLength += size;
      }
      view.setUint32(start + 56, dataLength, true);
      view.setUint32(header, crc32(bytes.subarray(start, header)), true);
      domain.indexCursor = start + length;
    }
  }

  /** The write phase; returns the number of fsync calls it made. */
  #write(touched: DomainState[], targets: DataTarget[], sync: boolean, delta: CommitDelta): number {
    const io = this.#io;
    let fsyncs = 0;
    const registryDeltas = new Map<DomainState, Uint8Array>();
    for (const domain of touched) {
      if (domain.pendingNames.length === 0) continue;
      fsyncs += this.#ensureFolder(domain);
      let size = 0;
      for (const entry of domain.pendingNames) size += registryRecordBytes(entry.name);
      const bytes = new Uint8Array(size);
      let at = 0;
      let sequence = domain.registry.records - domain.pendingNames.length;
      for (const entry of domain.pendingNames) {
        at = encodeRegistryRecord(bytes, at, sequence++, entry.kind, entry.code, entry.name);
      }
      if (domain.registryFd === NO_FD) {
        const opened = this.#openForAppend(domain, REGISTRY_FILE);
        domain.registryFd = opened.fd;
        fsyncs += opened.fsyncs;
      }
      io.write(domain.registryFd, bytes, domain.registryEnd);
      // Always durable before any index record that uses the new codes, whatever the durability.
      this.#timed(() => io.fsync(domain.registryFd));
      fsyncs++;
      domain.registryEnd += size;
      registryDeltas.set(domain, bytes);
    }

    for (const target of targets) {
      if (target.length === 0) continue;
      fsyncs += this.#ensureFolder(target.domain);
      const fd = this.#dataFd(target);
      fsyncs += fd.fsyncs;
      io.write(
        fd.fd,
        this.#arena.subarray(target.arenaOffset, target.arenaOffset + target.length),
        target.fileStart,
      );
      this.#dirty.add(fd.fd);
      this.#dirtyData.add(fd.fd);
    }
    if (sync) {
      // Every unsynced data file, not only this call's: the index about to be synced also holds
      // records of earlier 'write'/'none' calls, and an index record must never outlive its data.
      for (const fd of this.#dirtyData) {
        this.#timed(() => io.fdatasync(fd));
        fsyncs++;
      }
      for (const fd of this.#dirtyData) this.#dirty.delete(fd);
      this.#dirtyData.clear();
    }

    for (const domain of touched) {
      if (domain.indexBuffer.byteLength === 0) continue;
      fsyncs += this.#ensureFolder(domain);
      if (domain.indexFd === NO_FD) {
        const opened = this.#openForAppend(domain, INDEX_FILE);
        domain.indexFd = opened.fd;
        fsyncs += opened.fsyncs;
      }
      io.write(domain.indexFd, domain.indexBuffer, domain.indexEnd);
      this.#dirty.add(domain.indexFd);
    }
    if (sync) {
      for (const domain of touched) {
        if (domain.indexBuffer.byteLength === 0 || !this.#dirty.has(domain.indexFd)) continue;
        this.#timed(() => io.fdatasync(domain.indexFd));
        this.#dirty.delete(domain.indexFd);
        fsyncs++;
      }
    }

    for (const domain of touched) {
      const indexBytes = domain.indexBuffer;
      const entry: DomainDelta = {
        domain: domain.name,
        registryBytes: registryDeltas.get(domain) ?? new Uint8Array(0),
        indexOffset: domain.indexEnd,
        indexBytes,
      };
      domain.indexEnd += indexBytes.byteLength;
      domain.indexBuffer = new Uint8Array(0);
      delta.domains.push(entry);
    }
    delta.generation = this.#generation;
    return fsyncs;
  }

  /** Creates the domain folder on first use (and makes its entry durable); returns fsyncs made. */
  #ensureFolder(domain: DomainState): number {
    if (domain.folderExists) return 0;
    const io = this.#io;
    io.mkdir(domain.folder);
    this.#timed(() => io.fsyncDir(this.#root));
    domain.folderExists = true;
    return 1;
  }

  /** Opens a domain file for writing, creating it (and fsyncing the folder) when it is new. */
  #openForAppend(domain: DomainState, name: string): { fd: number; fsyncs: number } {
    const io = this.#io;
    const path = joinPath(domain.folder, name);
    const isNew = !io.exists(path);
    const fd = io.open(path, 'create');
    if (!isNew) return { fd, fsyncs: 0 };
    this.#timed(() => io.fsyncDir(domain.folder));
    return { fd, fsyncs: 1 };
  }

  #dataFd(target: DataTarget): { fd: number; fsyncs: number } {
    const aggregateType = target.aggregateType;
    if (aggregateType.fd !== NO_FD && aggregateType.fdSegment === target.segment) {
      return { fd: aggregateType.fd, fsyncs: 0 };
    }
    let fsyncs = 0;
    if (aggregateType.fd !== NO_FD) {
      // The previous segment is complete: make it durable before letting go of its descriptor.
      if (this.#dirty.has(aggregateType.fd)) {
        const fd = aggregateType.fd;
        this.#timed(() => this.#io.fdatasync(fd));
        this.#dirty.delete(aggregateType.fd);
        this.#dirtyData.delete(aggregateType.fd);
        fsyncs++;
      }
      this.#io.close(aggregateType.fd);
      aggregateType.fd = NO_FD;
    }
    const opened = this.#openForAppend(target.domain, segmentFileName(aggregateType.name, target.segment));
    aggregateType.fd = opened.fd;
    aggregateType.fdSegment = target.segment;
    return { fd: opened.fd, fsyncs: fsyncs + opened.fsyncs };
  }

  /** Runs one fsync-like call and records how long it took. */
  #timed(sync: () => void): void {
    const start = performance.now();
    sync();
    this.#syncSeconds.push((performance.now() - start) / 1000);
  }

  #fail(err: unknown): never {
    const cause = (err as { code?: unknown })?.code;
    this.#failure = new RingStoreError(
      'STORE_FAILED',
      `the store has failed and accepts no more writes (a file write or fsync failed${typeof cause === 'string' ? `: ${cause}` : ''})`,
    );
    throw this.#failure;
  }
}

/**
 * Batches arrive validated, but a value that does not fit its field would be stored wrong (u16
 * lengths, u8 key length), so the storage layer checks the shape itself. Returns the batch's
 * payload bytes, or the error that rejects it.
 */
function checkShape(batch: AppendBatch): number | RingStoreError {
  const events = batch.events;
  if (events.length === 0 || events.length > LIMITS.maxEventsPerBatch) {
    return new RingStoreError('INVALID_BATCH', `a batch holds 1 to ${LIMITS.maxEventsPerBatch} events`);
  }
  if (batch.aggregateId < 1n || batch.aggregateId > LIMITS.maxAggregateId)
    return new RingStoreError('INVALID_ID');
  if (
    batch.idempotencyKey !== undefined &&
    (batch.idempotencyKey.length === 0 ||
      Buffer.byteLength(batch.idempotencyKey) > LIMITS.maxIdempotencyKeyBytes)
  ) {
    return new RingStoreError('INVALID_IDEMPOTENCY_KEY');
  }
  let dataLength = 0;
  for (let e = 0; e < events.length; e++) {
    const size = events[e]!.data.byteLength;
    if (size > LIMITS.maxEventDataBytes)
      return new RingStoreError('EVENT_TOO_LARGE', undefined, { index: e });
    dataLength += size;
  }
  if (dataLength > LIMITS.maxBatchDataBytes) return new RingStoreError('BATCH_TOO_LARGE');
  return dataLength;
}

/** Batches arrive validated; this is the storage layer's own guard before a name nears a path. */
function invalidName(kind: string, name: string): RingStoreError {
  return new RingStoreError('INVALID_NAME', `invalid ${kind} name ${JSON.stringify(name.slice(0, 80))}`, {
    kind,
  });
}

function newAggregateTypeState(name: string, code: number): AggregateTypeState {
  return {
    name,
    code,
    segment: 0,
    end: 0,
    fd: NO_FD,
    fdSegment: -1,
    target: undefined,
    instances: new Map(),
  };
}

function parentDir(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  const at = trimmed.lastIndexOf('/');
  if (at < 0) return '.';
  return at === 0 ? '/' : trimmed.slice(0, at);
}
