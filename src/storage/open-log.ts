import { STORAGE_NAME_PATTERN } from '../model/names.js';
import type { FileIO } from './file-io.js';
import { domainDir, INDEX_FILE, joinPath, parentDir, REGISTRY_FILE, segmentFileName } from './format.js';
import type { IndexRecord } from './index-record.js';
import { type DomainState, instanceOf, newAggregateTypeState, newDomainState } from './log-state.js';
import { NameRegistry } from './name-registry.js';
import { type RecoveryAction, recoverDomain } from './recovery.js';

/** The writer's view of a store directory after recovery: what StorageWriter.open starts from. */
export interface OpenedLog {
  domains: DomainState[];
  actions: RecoveryAction[];
  generation: number;
  lastTimestamp: number;
}

/**
 * Opens a store directory for writing: creates it (and makes its entry durable) when missing,
 * recovers every domain folder (recovery.ts), rebuilds the log state from the records that stay
 * (positions, data ends, instance versions, idempotency keys), and syncs what it keeps.
 */
export function openLog(io: FileIO, root: string): OpenedLog {
  makeDirectory(io, root);
  const opened: OpenedLog = { domains: [], actions: [], generation: 0, lastTimestamp: 0 };
  for (const name of io.readdir(root)) {
    if (!STORAGE_NAME_PATTERN.test(name) || !io.isDirectory(joinPath(root, name))) continue;
    const domain = newDomainState(name, domainDir(root, name), new NameRegistry(), true);
    const { plan, actions } = recoverDomain(io, root, name, (record) => applyRecord(domain, record));
    opened.actions.push(...actions);
    domain.registry = plan.registry;
    domain.registryEnd = plan.registryEnd;
    domain.indexEnd = plan.indexEnd;
    domain.nextPosition = plan.state.nextPosition;
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
    syncKept(io, domain, plan.segments);
    opened.domains.push(domain);
  }
  return opened;
}

/**
 * Makes what recovery kept durable before any new record vouches for it: after a process crash
 * (not a power loss) the page cache may still hold bytes that never reached the disk. Segments
 * before the last one of each type were synced when they were rolled.
 */
function syncKept(io: FileIO, domain: DomainState, segments: Map<string, Map<number, number>>): void {
  const syncFile = (name: string) => {
    const fd = io.open(joinPath(domain.folder, name), 'readwrite');
    try {
      io.fdatasync(fd);
    } finally {
      io.close(fd);
    }
  };
  if (domain.registryEnd > 0) syncFile(REGISTRY_FILE);
  if (domain.indexEnd > 0) syncFile(INDEX_FILE);
  for (const aggregateType of domain.aggregateTypes) {
    if (segments.get(aggregateType.name)?.has(aggregateType.segment)) {
      syncFile(segmentFileName(aggregateType.name, aggregateType.segment));
    }
  }
  domain.registrySynced = domain.registryEnd;
  domain.indexSynced = domain.indexEnd;
}

/** Brings an instance's version and keyed results up to a record that stays. */
function applyRecord(domain: DomainState, record: IndexRecord): void {
  const code = record.aggregateTypeCode;
  // The scan has checked the code against the registry; openLog fills in the names after.
  while (domain.aggregateTypes.length <= code) {
    domain.aggregateTypes.push(newAggregateTypeState('', domain.aggregateTypes.length));
  }
  const instance = instanceOf(domain.aggregateTypes[code]!, record.aggregateId);
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
