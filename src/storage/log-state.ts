import type { AppendFile } from './append-file.js';
import type { DomainIndex } from './domain-index.js';
import type { NameKindCode } from './format.js';
import type { InstanceState } from './instance-cache.js';
import type { NameRegistry } from './name-registry.js';
import { SEGMENT_HEADER_BYTES } from './segment-header.js';

/**
 * What the writer knows of the log it appends to, rebuilt by recovery at open: per domain its
 * names, files, next position, synced ends and index on disk; per aggregate type where its data
 * ends and the cached states of its instances (InstanceCache bounds them across the writer).
 */
export interface AggregateTypeState {
  name: string;
  code: number;
  /** Segment being appended to and where its data ends (as the index knows it). */
  segment: number;
  end: number;
  /** The open segment file (undefined until the first write of this open). */
  file: AppendFile | undefined;
  fileSegment: number;
  /** Cached instance states (a subset: DomainIndex has every instance). */
  instances: Map<bigint, InstanceState>;
}

export interface DomainState {
  name: string;
  folder: string;
  folderExists: boolean;
  registry: NameRegistry;
  registryFile: AppendFile | undefined;
  registryEnd: number;
  /** Registry and index bytes known durable: what the next records vouch for. */
  registrySynced: number;
  indexFile: AppendFile | undefined;
  indexEnd: number;
  indexSynced: number;
  nextPosition: number;
  /** Generation and timestamp of the domain's last batch. */
  lastGeneration: number;
  lastTimestamp: number;
  aggregateTypes: AggregateTypeState[];
  /** Names registered by the append call in progress, to be written to the registry file. */
  pendingNames: { kind: NameKindCode; code: number; name: string }[];
  /** Index bytes of the append call in progress. */
  pendingIndexBytes: number;
  inCall: boolean;
  /** The index on disk: instance lookups, runs, positions, checkpoints. */
  index: DomainIndex;
}

export function newAggregateTypeState(name: string, code: number): AggregateTypeState {
  return {
    name,
    code,
    segment: 0,
    end: SEGMENT_HEADER_BYTES,
    file: undefined,
    fileSegment: -1,
    instances: new Map(),
  };
}

export function newDomainState(
  name: string,
  folder: string,
  registry: NameRegistry,
  folderExists: boolean,
  index: DomainIndex,
): DomainState {
  return {
    name,
    folder,
    folderExists,
    registry,
    registryFile: undefined,
    registryEnd: 0,
    registrySynced: 0,
    indexFile: undefined,
    indexEnd: 0,
    indexSynced: 0,
    nextPosition: 0,
    lastGeneration: 0,
    lastTimestamp: 0,
    aggregateTypes: [],
    pendingNames: [],
    pendingIndexBytes: 0,
    inCall: false,
    index,
  };
}
