import { STORAGE_NAME_PATTERN } from '../model/names.js';
import type { BlockCache } from './block-cache.js';
import { type Checkpoint, readCheckpoint } from './checkpoint.js';
import { DomainIndex, type IndexPolicy } from './domain-index.js';
import { type FileIO, readWholeFile } from './file-io.js';
import { domainDir, INDEX_FILE, joinPath, parentDir, REGISTRY_FILE, segmentFileName } from './format.js';
import type { IndexRecord } from './index-record.js';
import { type DomainState, newAggregateTypeState, newDomainState } from './log-state.js';
import { NameRegistry } from './name-registry.js';
import { type RecoveryAction, recoverDomain } from './recovery.js';
import { corruptData, type Damage, type PlanStart } from './recovery-plan.js';
import { scanRegistry } from './scan.js';
import { SEGMENT_HEADER_BYTES } from './segment-header.js';

/** The writer's view of a store directory after recovery: what StorageWriter.open starts from. */
/** A domain whose index files open rebuilt from its log (docs/OPERATIONS.md, "Rebuilding index files"). */
export interface IndexRebuild {
  domain: string;
  /** Why the checkpoint could not be used. */
  reason: string;
  /** Index records read to rebuild it. */
  batches: number;
}

export interface OpenedLog {
  domains: DomainState[];
  actions: RecoveryAction[];
  rebuilds: IndexRebuild[];
  generation: number;
  lastTimestamp: number;
}

/** Batches a rebuild holds in memory before it writes them as a run. */
const REBUILD_SPILL_BATCHES = 65_536;

/**
 * Opens a store directory for writing: creates it (and makes its entry durable) when missing,
 * recovers every domain folder (recovery.ts) from its checkpoint on (the whole log when it has none
 * or one that cannot be trusted: the index files are then rebuilt), brings the domain's index up to
 * the records that stay, syncs what it keeps, and checkpoints a domain whose index grew.
 */
export function openLog(io: FileIO, root: string, cache: BlockCache, policy: IndexPolicy): OpenedLog {
  makeDirectory(io, root);
  const opened: OpenedLog = { domains: [], actions: [], rebuilds: [], generation: 0, lastTimestamp: 0 };
  for (const name of io.readdir(root)) {
    if (!STORAGE_NAME_PATTERN.test(name) || !io.isDirectory(joinPath(root, name))) continue;
    const folder = domainDir(root, name);
    const { index, start, why } = openIndex(io, folder, name, cache, policy);
    const domain = newDomainState(name, folder, new NameRegistry(), true, index);
    const { plan, actions } = recoverDomain(
      io,
      root,
      name,
      (record) => {
        if (start === undefined && index.memtableBatches >= REBUILD_SPILL_BATCHES) {
          index.spill(record.fileOffset);
          index.advanceMerge(4 * REBUILD_SPILL_BATCHES);
        }
        addRecord(domain, record);
      },
      start,
    );
    opened.actions.push(...actions);
    domain.registry = plan.registry;
    domain.registryEnd = plan.registryEnd;
    domain.indexEnd = plan.indexEnd;
    domain.nextPosition = plan.state.nextPosition;
    domain.lastGeneration = plan.state.lastGeneration;
    domain.lastTimestamp = plan.state.lastTimestamp;
    const names = domain.registry.aggregateTypes;
    for (let code = 0; code < names.length; code++) {
      const known = domain.aggregateTypes[code];
      if (known) known.name = names[code]!;
      else domain.aggregateTypes[code] = newAggregateTypeState(names[code]!, code);
    }
    for (const [code, end] of plan.state.dataEnds) {
      domain.aggregateTypes[code]!.segment = end.segment;
      domain.aggregateTypes[code]!.end = end.end;
    }
    opened.generation = Math.max(opened.generation, plan.state.lastGeneration);
    opened.lastTimestamp = Math.max(opened.lastTimestamp, plan.state.lastTimestamp);
    syncKept(io, domain, plan.segments, start);
    if (domain.indexEnd > index.checkpointedEnd) {
      index.checkpoint({
        registryEnd: domain.registryEnd,
        indexEnd: domain.indexEnd,
        nextPosition: domain.nextPosition,
        lastGeneration: domain.lastGeneration,
        lastTimestamp: domain.lastTimestamp,
        dataEnds: plan.state.dataEnds,
      });
    }
    if (start === undefined && plan.records > 0) {
      opened.rebuilds.push({ domain: name, reason: why, batches: plan.records });
    }
    opened.domains.push(domain);
  }
  return opened;
}

/**
 * The domain's index from its checkpoint, with where recovery starts reading the log; an empty
 * index and no start when there is no checkpoint, or when it or a file it names is damaged (those
 * are derived files: they are rebuilt from the log, never trusted).
 */
function openIndex(
  io: FileIO,
  folder: string,
  name: string,
  cache: BlockCache,
  policy: IndexPolicy,
): { index: DomainIndex; start: PlanStart | undefined; why: string } {
  const checkpoint = readCheckpoint(io, folder);
  let why = 'no checkpoint';
  if (typeof checkpoint === 'string') why = `checkpoint damaged (${checkpoint})`;
  else if (checkpoint !== undefined) {
    const shortfall = shortfallOf(io, folder, name, checkpoint);
    if (shortfall !== undefined) throw corruptData(shortfall);
    try {
      const index = DomainIndex.fromCheckpoint(io, folder, name, cache, policy, checkpoint);
      const dataEnds = new Map<number, { segment: number; end: number }>();
      for (const end of checkpoint.dataEnds) {
        dataEnds.set(end.aggregateTypeCode, { segment: end.segment, end: end.end });
      }
      return {
        index,
        why: '',
        start: {
          registryEnd: checkpoint.registryEnd,
          indexOffset: checkpoint.indexEnd,
          nextPosition: checkpoint.nextPosition,
          lastGeneration: checkpoint.lastGeneration,
          lastTimestamp: checkpoint.lastTimestamp,
          dataEnds,
        },
      };
    } catch (err) {
      why = `an index file is damaged (${(err as Error).message})`;
    }
  }
  return { index: DomainIndex.empty(io, folder, name, cache, policy), start: undefined, why };
}

/**
 * Where the log ends short of what its checkpoint vouches for, if it does: the checkpoint is written
 * after a barrier, so every byte below its registry, index and data ends was synced, and a file
 * shorter than that lost synced bytes. A crash cannot do that; damage or a file replaced by hand
 * can. Open then refuses, as for any damage to synced bytes (docs/OPERATIONS.md, "Damaged files").
 */
function shortfallOf(io: FileIO, folder: string, domain: string, checkpoint: Checkpoint): Damage | undefined {
  const sizeOf = (file: string) => {
    const path = joinPath(folder, file);
    if (!io.exists(path)) return 0;
    const fd = io.open(path, 'read');
    try {
      return io.size(fd);
    } finally {
      io.close(fd);
    }
  };
  const short = (file: string, size: number, end: number): Damage => ({
    file: `${domain}/${file}`,
    offset: size,
    reason: `the file ends at ${size}, below the checkpoint's end ${end}: synced bytes are missing`,
  });
  const indexSize = sizeOf(INDEX_FILE);
  if (indexSize < checkpoint.indexEnd) return short(INDEX_FILE, indexSize, checkpoint.indexEnd);
  const registrySize = sizeOf(REGISTRY_FILE);
  if (registrySize < checkpoint.registryEnd)
    return short(REGISTRY_FILE, registrySize, checkpoint.registryEnd);
  const scan = scanRegistry(readWholeFile(io, joinPath(folder, REGISTRY_FILE)));
  for (const end of checkpoint.dataEnds) {
    const aggregateType = scan.registry.aggregateTypes[end.aggregateTypeCode];
    // A registry damaged below the checkpoint's end is refused by the plan (PlanStart.registryEnd).
    if (aggregateType === undefined) continue;
    const segment = segmentFileName(aggregateType, end.segment);
    const size = sizeOf(segment);
    if (end.end > SEGMENT_HEADER_BYTES && size < end.end) return short(segment, size, end.end);
  }
  return undefined;
}

/**
 * Makes what recovery kept durable before any new record vouches for it: after a process crash
 * (not a power loss) the page cache may still hold bytes that never reached the disk. That is the
 * registry, the index, and every segment that records past the checkpoint may use: from the one
 * each type's data ended in at the checkpoint (every segment when there is none) to its last.
 * Segments before those were synced when they were rolled, before the checkpoint.
 */
function syncKept(
  io: FileIO,
  domain: DomainState,
  segments: Map<string, Map<number, number>>,
  start: PlanStart | undefined,
): void {
  // fdatasync needs no write access: a sealed segment made read-only still opens.
  const syncFile = (name: string) => {
    const fd = io.open(joinPath(domain.folder, name), 'read');
    try {
      io.fdatasync(fd);
    } finally {
      io.close(fd);
    }
  };
  if (domain.registryEnd > 0) syncFile(REGISTRY_FILE);
  if (domain.indexEnd > 0) syncFile(INDEX_FILE);
  for (const aggregateType of domain.aggregateTypes) {
    const from = start?.dataEnds.get(aggregateType.code)?.segment ?? 0;
    for (const segment of segments.get(aggregateType.name)?.keys() ?? []) {
      // Segments past the type's last one were moved aside by recovery (unreferenced).
      if (segment >= from && segment <= aggregateType.segment) {
        syncFile(segmentFileName(aggregateType.name, segment));
      }
    }
  }
  domain.registrySynced = domain.registryEnd;
  domain.indexSynced = domain.indexEnd;
}

/** Adds a record that stays to the domain's index. */
function addRecord(domain: DomainState, record: IndexRecord): void {
  domain.index.add(
    {
      aggregateTypeCode: record.aggregateTypeCode,
      aggregateId: record.aggregateId,
      firstVersion: record.firstVersion,
      eventCount: record.eventCount,
      generation: record.generation,
      indexOffset: record.fileOffset,
      hasKey: record.idempotencyKey !== undefined,
    },
    record.firstPosition,
    record.timestamp,
  );
}

/** Creates a directory and its missing parents, making each new entry durable in its parent. */
function makeDirectory(io: FileIO, path: string): void {
  const missing: string[] = [];
  for (let at = path; !io.exists(at); at = parentDir(at)) {
    missing.push(at);
    if (parentDir(at) === at) break;
  }
  if (missing.length === 0) return;
  io.mkdir(path);
  for (let i = missing.length - 1; i >= 0; i--) io.fsyncDir(parentDir(missing[i]!));
}
