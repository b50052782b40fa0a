import { RingStoreError } from '../errors.js';
import { STORAGE_NAME_PATTERN } from '../model/names.js';
import {
  instanceKey,
  type RepartitionPlan,
  type ResolvedPlan,
  resolveRepartitionPlan,
  type StoreOutline,
} from '../model/repartition-plan.js';
import { createTarget, refuseExistingTarget, refuseNestedTarget } from './backup.js';
import { refuseIncomplete, removeIncompleteMarker } from './build-marker.js';
import { DirectoryLock } from './directory-lock.js';
import { eventListOf } from './event-list.js';
import { type FileIO, realFileIO } from './file-io.js';
import { INDEX_FILE, joinPath, parentDir, segmentFileName } from './format.js';
import {
  decodeIndexRecord,
  emptyIndexRecord,
  eventCrc,
  eventDataLength,
  eventMetadataLength,
  eventTypeCode,
  type IndexRecord,
  MAX_INDEX_RECORD_BYTES,
} from './index-record.js';
import type { NameRegistry } from './name-registry.js';
import { corruptData, planDomain } from './recovery-plan.js';
import type { AppendEvent } from './types.js';
import { verifyStore } from './verify.js';
import { type RecordedBatch, StorageWriter } from './writer.js';

/**
 * The offline repartition tool (docs/OPERATIONS.md, "Repartition"), the one place where events are
 * physically deleted: it writes a NEW store from a source that no process holds, following a plan
 * (src/model/repartition-plan.ts), and never changes the source.
 *
 *   lock     the source's LOCK (STORE_LOCKED when a process holds it), held to the end
 *   scan     every source domain read-only, as verify reads it (planDomain): the batches that an
 *            open would keep (a torn tail is left out, damage refuses), counted per aggregate type
 *   resolve  the plan checked against those names (INVALID_PLAN); --dry-run stops here
 *   target   created new with its INCOMPLETE marker (every open refuses it until the end)
 *   write    per target domain, the batches routed to it from each of its source domains, merged
 *            by (generation, source domain name, source position), appended with their generation,
 *            timestamp, version, idempotency key and events (StorageWriter.appendRecorded): new
 *            positions from 0, the same versions, generations and timestamps
 *   close    the target writer syncs every file and writes every domain's checkpoint
 *   verify   the whole target (verifyStore) must be clean and hold the counts the plan predicts
 *   finish   the marker removed: the target is a store
 *
 * A crash or kill at any step leaves the source as it was (it is only read; a stale LOCK is taken
 * over by the next open) and the target refused by every open (STORE_INCOMPLETE).
 */
export interface RepartitionOptions {
  dryRun?: boolean;
  onProgress?: (progress: RepartitionProgress) => void;
  io?: FileIO;
  /** Batches per append call into the target (default 2,048). */
  batchesPerCommit?: number;
}

export interface RepartitionProgress {
  phase: 'scan' | 'write' | 'verify';
  /** scan: source index records read; write: batches written; verify: target records checked. */
  done: number;
  total: number;
}

export interface SourceDomainCount {
  domain: string;
  batches: number;
  events: number;
  droppedBatches: number;
  droppedEvents: number;
}

export interface TargetDomainCount {
  domain: string;
  /** Source domains it takes batches from. */
  from: string[];
  aggregateTypes: string[];
  batches: number;
  events: number;
}

export interface RepartitionReport {
  from: string;
  to: string;
  dryRun: boolean;
  sources: SourceDomainCount[];
  targets: TargetDomainCount[];
  /** The largest generation kept (0 when nothing is). */
  lastGeneration: number;
}

/** One source domain as the scan found it. */
interface SourceDomain {
  name: string;
  registry: NameRegistry;
  indexEnd: number;
  /** Per aggregate-type code: batches and events. */
  typeCounts: Map<number, { batches: number; events: number }>;
  /** Per instance the plan drops (instanceKey): batches and events. */
  droppedCounts: Map<string, { batches: number; events: number }>;
  records: number;
}

const DEFAULT_BATCHES_PER_COMMIT = 2048;
const COMMIT_DATA_BYTES = 8 * 1024 * 1024;
const INDEX_WINDOW_BYTES = 1024 * 1024;
const DATA_WINDOW_BYTES = 1024 * 1024;

export function repartitionStore(
  from: string,
  to: string,
  plan: RepartitionPlan,
  options: RepartitionOptions = {},
): RepartitionReport {
  const io = options.io ?? realFileIO;
  if (!io.exists(from) || !io.isDirectory(from)) {
    throw new RingStoreError('INVALID_OPTION', `--from ${from} is not a directory`, { option: 'from' });
  }
  refuseNestedTarget(from, to);
  refuseExistingTarget(to);
  refuseIncomplete(io, from);
  const lock = DirectoryLock.acquire(from);
  try {
    const sources = scanSources(io, from, plan, options.onProgress);
    const resolved = resolveRepartitionPlan(plan, outline(sources));
    const report = countReport(from, to, sources, resolved, options.dryRun === true);
    if (options.dryRun) return report;
    createTarget(to, `ringstore repartition of ${from}`);
    writeTarget(io, from, to, sources, resolved, report, options);
    const check = verifyStore(
      to,
      options.onProgress &&
        ((p) => options.onProgress!({ phase: 'verify', done: p.indexRecords, total: totalBatches(report) })),
      { io, building: true },
    );
    if (check.problems.length > 0) {
      const first = check.problems[0]!;
      throw new RingStoreError(
        'INTERNAL',
        `the new store failed its check (${first.file} at ${first.offset}: ${first.reason}); it stays marked incomplete`,
      );
    }
    for (const target of report.targets) {
      const found = check.domains.find((d) => d.domain === target.domain);
      if (found?.events !== target.events || found.indexRecords !== target.batches) {
        throw new RingStoreError(
          'INTERNAL',
          `the new domain ${target.domain} holds ${found?.events ?? 0} events, not the ${target.events} planned; it stays marked incomplete`,
        );
      }
    }
    removeIncompleteMarker(io, to);
    io.fsyncDir(parentDir(to));
    return report;
  } finally {
    lock.release();
  }
}

function totalBatches(report: RepartitionReport): number {
  return report.targets.reduce((sum, t) => sum + t.batches, 0);
}

/** Reads every source domain read-only: what stays of its log, counted per aggregate type. */
function scanSources(
  io: FileIO,
  from: string,
  plan: RepartitionPlan,
  onProgress: RepartitionOptions['onProgress'],
): SourceDomain[] {
  const wanted = new Set(plan.dropInstances.map((ref) => instanceKey(ref.domain, ref.aggregateType, ref.id)));
  const sources: SourceDomain[] = [];
  let scanned = 0;
  const names = io
    .readdir(from)
    .filter((n) => STORAGE_NAME_PATTERN.test(n) && io.isDirectory(joinPath(from, n)));
  for (const name of names) {
    const typeCounts = new Map<number, { batches: number; events: number }>();
    const droppedCounts = new Map<string, { batches: number; events: number }>();
    const domainPlan = planDomain(io, from, name, (record, _view, registry) => {
      const counts = typeCounts.get(record.aggregateTypeCode) ?? { batches: 0, events: 0 };
      typeCounts.set(record.aggregateTypeCode, counts);
      counts.batches++;
      counts.events += record.eventCount;
      if (wanted.size > 0) {
        const key = instanceKey(name, registry.aggregateTypes[record.aggregateTypeCode]!, record.aggregateId);
        if (wanted.has(key)) {
          const dropped = droppedCounts.get(key) ?? { batches: 0, events: 0 };
          dropped.batches++;
          dropped.events += record.eventCount;
          droppedCounts.set(key, dropped);
        }
      }
      if (++scanned % 10_000 === 0) onProgress?.({ phase: 'scan', done: scanned, total: 0 });
    });
    if (domainPlan.corrupt) throw corruptData(domainPlan.corrupt);
    sources.push({
      name,
      registry: domainPlan.registry,
      indexEnd: domainPlan.indexEnd,
      typeCounts,
      droppedCounts,
      records: domainPlan.records,
    });
  }
  return sources;
}

function outline(sources: readonly SourceDomain[]): StoreOutline {
  const domains = new Map<string, Set<string>>();
  const instances = new Set<string>();
  for (const source of sources) {
    if (source.typeCounts.size === 0) continue;
    domains.set(
      source.name,
      new Set([...source.typeCounts.keys()].map((c) => source.registry.aggregateTypes[c]!)),
    );
    for (const key of source.droppedCounts.keys()) instances.add(key);
  }
  return { domains, instances };
}

function countReport(
  from: string,
  to: string,
  sources: readonly SourceDomain[],
  plan: ResolvedPlan,
  dryRun: boolean,
): RepartitionReport {
  const report: RepartitionReport = { from, to, dryRun, sources: [], targets: [], lastGeneration: 0 };
  const targets = new Map<string, TargetDomainCount>();
  for (const [domain, fromDomains] of plan.targets) {
    targets.set(domain, { domain, from: [...fromDomains], aggregateTypes: [], batches: 0, events: 0 });
  }
  for (const source of sources) {
    const count: SourceDomainCount = {
      domain: source.name,
      batches: 0,
      events: 0,
      droppedBatches: 0,
      droppedEvents: 0,
    };
    for (const [code, counts] of source.typeCounts) {
      const aggregateType = source.registry.aggregateTypes[code]!;
      count.batches += counts.batches;
      count.events += counts.events;
      const target = plan.targetOf(source.name, aggregateType);
      let batches = counts.batches;
      let events = counts.events;
      if (target !== undefined) {
        for (const [key, dropped] of source.droppedCounts) {
          if (!key.startsWith(`${source.name}/${aggregateType}/`)) continue;
          batches -= dropped.batches;
          events -= dropped.events;
        }
        const into = targets.get(target)!;
        into.batches += batches;
        into.events += events;
        if (!into.aggregateTypes.includes(aggregateType)) into.aggregateTypes.push(aggregateType);
      } else {
        batches = 0;
        events = 0;
      }
      count.droppedBatches += counts.batches - batches;
      count.droppedEvents += counts.events - events;
    }
    report.sources.push(count);
  }
  // A target whose every batch is dropped (its instances one by one) gets no folder.
  for (const target of targets.values()) {
    if (target.batches === 0) continue;
    target.aggregateTypes.sort();
    report.targets.push(target);
  }
  return report;
}

/** Writes every target domain: its sources' batches merged by (generation, source name, position). */
function writeTarget(
  io: FileIO,
  from: string,
  to: string,
  sources: readonly SourceDomain[],
  plan: ResolvedPlan,
  report: RepartitionReport,
  options: RepartitionOptions,
): void {
  const perCommit = options.batchesPerCommit ?? DEFAULT_BATCHES_PER_COMMIT;
  const total = totalBatches(report);
  const writer = StorageWriter.open(to, { io, building: true });
  let written = 0;
  try {
    for (const [target, fromDomains] of plan.targets) {
      const cursors = fromDomains.map((name) => {
        const source = sources.find((s) => s.name === name)!;
        return new SourceCursor(io, from, source, plan, target);
      });
      try {
        let chunk: RecordedBatch[] = [];
        let chunkBytes = 0;
        const flush = () => {
          if (chunk.length === 0) return;
          commit(writer, chunk);
          written += chunk.length;
          options.onProgress?.({ phase: 'write', done: written, total });
          chunk = [];
          chunkBytes = 0;
        };
        for (;;) {
          let next: SourceCursor | undefined;
          for (const cursor of cursors) {
            const head = cursor.peek();
            if (head && (next === undefined || head.generation < next.peek()!.generation)) next = cursor;
          }
          if (next === undefined) break;
          const batch = next.take();
          report.lastGeneration = Math.max(report.lastGeneration, batch.generation);
          chunk.push(batch);
          const events = eventListOf(batch.events);
          for (let i = 0; i < events.length; i++) chunkBytes += events.dataBytes(i) + events.metadataBytes(i);
          if (chunk.length >= perCommit || chunkBytes >= COMMIT_DATA_BYTES) flush();
        }
        flush();
      } finally {
        for (const cursor of cursors) cursor.close();
      }
    }
  } catch (err) {
    writer.close();
    throw err;
  }
  writer.close();
}

function commit(writer: StorageWriter, batches: RecordedBatch[]): void {
  const report = writer.appendRecorded(batches, 'write');
  for (let i = 0; i < batches.length; i++) {
    const outcome = report.outcomes[i]!;
    const batch = batches[i]!;
    const where = `${batch.domain}/${batch.aggregateType}/${batch.aggregateId}`;
    if (!outcome.ok) {
      throw new RingStoreError(
        'INTERNAL',
        `a batch of ${where} was refused by the new store: ${outcome.error.message}`,
      );
    }
    if (outcome.result.replayed) {
      throw new RingStoreError('INTERNAL', `a batch of ${where} repeats an idempotency key of the instance`);
    }
  }
}

/**
 * The batches of one source domain that go to one target domain, in index order, read in windows
 * of the index file up to where the scan said the log stays; payloads by positional reads.
 */
class SourceCursor {
  readonly #io: FileIO;
  readonly #folder: string;
  readonly #source: SourceDomain;
  readonly #plan: ResolvedPlan;
  readonly #target: string;
  readonly #fd: number;
  readonly #segments = new Map<string, { fd: number; start: number; length: number; bytes: Uint8Array }>();
  readonly #record: IndexRecord = emptyIndexRecord();
  #window = new Uint8Array(0);
  #view = new DataView(this.#window.buffer);
  #windowStart = 0;
  #offset = 0;
  #head: RecordedBatch | undefined;
  #done = false;

  constructor(io: FileIO, root: string, source: SourceDomain, plan: ResolvedPlan, target: string) {
    this.#io = io;
    this.#folder = joinPath(root, source.name);
    this.#source = source;
    this.#plan = plan;
    this.#target = target;
    this.#fd = io.open(joinPath(this.#folder, INDEX_FILE), 'read');
  }

  peek(): RecordedBatch | undefined {
    if (this.#head === undefined && !this.#done) this.#advance();
    return this.#head;
  }

  take(): RecordedBatch {
    const head = this.peek()!;
    this.#head = undefined;
    return head;
  }

  close(): void {
    this.#io.close(this.#fd);
    for (const window of this.#segments.values()) this.#io.close(window.fd);
  }

  #advance(): void {
    const registry = this.#source.registry;
    while (this.#offset < this.#source.indexEnd) {
      const record = this.#read();
      const aggregateType = registry.aggregateTypes[record.aggregateTypeCode]!;
      if (this.#plan.route(this.#source.name, aggregateType, record.aggregateId) !== this.#target) continue;
      const payload = this.#payload(record, aggregateType);
      const events: AppendEvent[] = new Array(record.eventCount);
      let at = 0;
      for (let i = 0; i < record.eventCount; i++) {
        const dataLength = eventDataLength(this.#view, record, i);
        const metadataLength = eventMetadataLength(this.#view, record, i);
        events[i] = {
          type: registry.eventTypes[eventTypeCode(this.#view, record, i)]!,
          data: payload.subarray(at, at + dataLength),
          metadata: payload.subarray(at + dataLength, at + dataLength + metadataLength),
          crc: eventCrc(this.#view, record, i),
        };
        at += dataLength + metadataLength;
      }
      this.#head = {
        domain: this.#target,
        aggregateType,
        aggregateId: record.aggregateId,
        expectedVersion: record.firstVersion - 1,
        idempotencyKey: record.idempotencyKey,
        events,
        generation: record.generation,
        timestamp: record.timestamp,
      };
      return;
    }
    this.#done = true;
  }

  /** The record at #offset (checked: CRC and fields), read through the window; moves past it. */
  #read(): IndexRecord {
    const offset = this.#offset;
    const end = this.#source.indexEnd;
    const file = `${this.#source.name}/${INDEX_FILE}`;
    const inWindow = (length: number) => offset + length <= this.#windowStart + this.#window.byteLength;
    if (!inWindow(4) || !inWindow(this.#view.getUint32(offset - this.#windowStart, true))) {
      let length = 0;
      if (inWindow(4)) length = this.#view.getUint32(offset - this.#windowStart, true);
      if (length > MAX_INDEX_RECORD_BYTES) throw damaged(file, offset, 'length');
      const size = Math.min(Math.max(length, INDEX_WINDOW_BYTES), end - offset);
      const window = new Uint8Array(size);
      const got = this.#io.read(this.#fd, window, 0, size, offset);
      if (got < size) throw damaged(file, offset, 'short');
      this.#window = window;
      this.#view = new DataView(window.buffer);
      this.#windowStart = offset;
    }
    const fault = decodeIndexRecord(
      this.#window,
      this.#view,
      offset - this.#windowStart,
      this.#record,
      this.#windowStart,
    );
    if (fault !== undefined) throw damaged(file, offset, fault);
    this.#offset = offset + this.#record.recordLength;
    return this.#record;
  }

  /**
   * The batch's stored bytes (data and metadata of its events), a new buffer. Read through a window
   * per segment file: batches come in index order, so each aggregate type's data is read forward.
   */
  #payload(record: IndexRecord, aggregateType: string): Uint8Array {
    if (record.dataLength === 0) return new Uint8Array(0);
    const name = segmentFileName(aggregateType, record.dataSegment);
    let window = this.#segments.get(name);
    if (window === undefined) {
      const fd = this.#io.open(joinPath(this.#folder, name), 'read');
      window = { fd, start: 0, length: 0, bytes: new Uint8Array(DATA_WINDOW_BYTES) };
      this.#segments.set(name, window);
    }
    const from = record.dataOffset;
    const to = from + record.dataLength;
    if (from < window.start || to > window.start + window.length) {
      if (window.bytes.byteLength < record.dataLength) window.bytes = new Uint8Array(record.dataLength);
      window.start = from;
      window.length = this.#io.read(window.fd, window.bytes, 0, window.bytes.byteLength, from);
      if (window.length < record.dataLength) {
        throw corruptData({
          file: `${this.#source.name}/${name}`,
          offset: from + window.length,
          reason: 'event data missing',
        });
      }
    }
    return window.bytes.slice(from - window.start, to - window.start);
  }
}

function damaged(file: string, offset: number, reason: string): RingStoreError {
  return corruptData({ file, offset, reason: `no valid index record (${reason})` });
}
