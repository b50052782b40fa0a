import type { BlockCache } from './block-cache.js';
import { type Checkpoint, type CheckpointRun, writeCheckpoint } from './checkpoint.js';
import type { FileIO } from './file-io.js';
import { joinPath } from './format.js';
import {
  BloomBuilder,
  bloomFileName,
  InstanceBloom,
  parseBloomFileName,
  writeBloom,
} from './instance-bloom.js';
import {
  InstanceRun,
  parseRunFileName,
  type RunEntry,
  type RunWriteJob,
  runFileName,
  writeRun,
} from './instance-run.js';
import {
  appendPositionEntries,
  POSITION_INTERVAL_BYTES,
  type PositionEntry,
  PositionIndex,
} from './position-index.js';
import { startMerge } from './run-merge.js';
import type { DataEnd } from './scan.js';

export const POSITIONS_FILE = 'positions';

/** How the writer keeps a domain's derived index: when it checkpoints and how runs are merged. */
export interface IndexPolicy {
  /** A checkpoint is written once this many index bytes follow the last one (and at close). */
  checkpointIndexBytes: number;
  /** Runs of one size tier merged into one when there are this many. */
  runFanIn: number;
}

export const DEFAULT_CHECKPOINT_INDEX_BYTES = 4 * 1024 * 1024;
export const DEFAULT_RUN_FAN_IN = 4;

/** What a checkpoint records of the log besides the index: the writer's state past indexEnd. */
export interface LogPoint {
  registryEnd: number;
  indexEnd: number;
  nextPosition: number;
  lastGeneration: number;
  lastTimestamp: number;
  dataEnds: Map<number, DataEnd>;
}

/** A merge carried out in steps: its job, the runs it replaces, and the filter built as it goes. */
interface MergeInProgress {
  job: RunWriteJob;
  sources: OpenRun[];
  runId: number;
  indexTo: number;
  bloom: BloomBuilder;
}

interface OpenRun {
  run: InstanceRun;
  /** Its instances' filter; undefined when the file is missing (the run is then always read). */
  bloom: InstanceBloom | undefined;
  info: CheckpointRun;
}

/**
 * The writer's side of one domain's index on disk (docs/FORMAT.md, "Index files"):
 *
 *   memtable   the batches appended since the last checkpoint, by instance (bounded by
 *              checkpointIndexBytes of index records)
 *   runs       immutable sorted files `instances-<id>.run`, oldest first; each checkpoint writes the
 *              memtable as a new run, and runs of one size tier are merged, fanIn at a time
 *   positions  one sparse entry per ~4 KiB of index, appended at each checkpoint
 *   checkpoint the manifest: runs, position entries and the scan state at indexEnd, replaced
 *              atomically (written aside, synced, renamed) after everything it names is synced
 *
 * It answers "the batches of an instance" for the writer's instance cache (versions and
 * idempotency keys of instances that are not cached).
 */
export class DomainIndex {
  readonly #io: FileIO;
  readonly #folder: string;
  readonly #name: string;
  readonly #cache: BlockCache;
  readonly #policy: IndexPolicy;
  #runs: OpenRun[] = [];
  /**
   * Run files replaced by a merge: removed once a checkpoint no longer names them. A reader that
   * still has them open keeps reading them; one that has not opened them yet finds them gone and
   * reloads the domain from the newer checkpoint (DomainView).
   */
  #obsolete: string[] = [];
  #memtable: RunEntry[] = [];
  /** The merge in progress, carried out by advanceMerge. */
  #merge: MergeInProgress | undefined;
  /** Runs were merged since the last checkpoint. */
  #runsChanged = false;
  #byInstance = new Map<number, Map<bigint, RunEntry[]>>();
  #pendingPositions: PositionEntry[] = [];
  #positionCount = 0;
  #lastPositionOffset = Number.NEGATIVE_INFINITY;
  #sequence = 0;
  #nextRunId = 1;
  /** indexEnd of the last checkpoint. */
  #checkpointedEnd = 0;
  #memtableFrom = 0;

  private constructor(io: FileIO, folder: string, name: string, cache: BlockCache, policy: IndexPolicy) {
    this.#io = io;
    this.#folder = folder;
    this.#name = name;
    this.#cache = cache;
    this.#policy = policy;
  }

  /** An empty index: the log is read from its start (no checkpoint, or one that cannot be trusted). */
  static empty(
    io: FileIO,
    folder: string,
    name: string,
    cache: BlockCache,
    policy: IndexPolicy,
  ): DomainIndex {
    const index = new DomainIndex(io, folder, name, cache, policy);
    index.#removeUnlisted(new Set());
    return index;
  }

  /**
   * The index a checkpoint describes. Throws CORRUPT_DATA when a file it names is missing or
   * damaged: the caller then rebuilds from the log (DomainIndex.empty).
   */
  static fromCheckpoint(
    io: FileIO,
    folder: string,
    name: string,
    cache: BlockCache,
    policy: IndexPolicy,
    checkpoint: Checkpoint,
  ): DomainIndex {
    const index = new DomainIndex(io, folder, name, cache, policy);
    try {
      for (const info of checkpoint.runs) {
        const file = runFileName(info.runId);
        const run = InstanceRun.open(io, joinPath(folder, file), cache, `${name}/${file}`);
        index.#runs.push({ run, bloom: index.#openBloom(info.runId), info });
        if (run.entryCount !== info.entryCount || run.meta.indexTo !== info.indexTo) {
          throw new Error(`${name}/${file} does not match the checkpoint`);
        }
      }
      if (checkpoint.positionEntries > 0) {
        const positions = PositionIndex.open(
          io,
          joinPath(folder, POSITIONS_FILE),
          cache,
          checkpoint.positionEntries,
          `${name}/${POSITIONS_FILE}`,
        );
        try {
          index.#lastPositionOffset = positions.entry(checkpoint.positionEntries - 1).indexOffset;
        } finally {
          positions.close();
        }
      }
    } catch (err) {
      index.close();
      throw err;
    }
    index.#positionCount = checkpoint.positionEntries;
    index.#sequence = checkpoint.sequence;
    index.#nextRunId = checkpoint.nextRunId;
    index.#checkpointedEnd = checkpoint.indexEnd;
    index.#memtableFrom = checkpoint.indexEnd;
    index.#removeUnlisted(new Set(checkpoint.runs.map((r) => r.runId)));
    return index;
  }

  /** indexEnd of the last checkpoint written or opened. */
  get checkpointedEnd(): number {
    return this.#checkpointedEnd;
  }

  /** Batches in the memtable (not yet in a run). */
  get memtableBatches(): number {
    return this.#memtable.length;
  }

  get runCount(): number {
    return this.#runs.length;
  }

  /** Adds an appended batch (in index order). */
  add(entry: RunEntry, firstPosition: number, timestamp: number): void {
    this.#memtable.push(entry);
    let byId = this.#byInstance.get(entry.aggregateTypeCode);
    if (!byId) {
      byId = new Map();
      this.#byInstance.set(entry.aggregateTypeCode, byId);
    }
    const list = byId.get(entry.aggregateId);
    if (list) list.push(entry);
    else byId.set(entry.aggregateId, [entry]);
    if (entry.indexOffset >= this.#lastPositionOffset + POSITION_INTERVAL_BYTES) {
      this.#pendingPositions.push({
        firstPosition,
        indexOffset: entry.indexOffset,
        generation: entry.generation,
        timestamp,
      });
      this.#lastPositionOffset = entry.indexOffset;
    }
  }

  /** The instance's last batch, or undefined when it has none. */
  lastOf(aggregateTypeCode: number, aggregateId: bigint): RunEntry | undefined {
    const recent = this.#byInstance.get(aggregateTypeCode)?.get(aggregateId);
    if (recent) return recent[recent.length - 1];
    for (let r = this.#runs.length - 1; r >= 0; r--) {
      const { run, bloom } = this.#runs[r]!;
      if (bloom && !bloom.mayContain(aggregateTypeCode, aggregateId)) continue;
      const last = run.lastOf(aggregateTypeCode, aggregateId);
      if (last) return last;
    }
    return undefined;
  }

  /** Every batch of the instance, in version order. */
  entriesOf(aggregateTypeCode: number, aggregateId: bigint): RunEntry[] {
    const all: RunEntry[] = [];
    for (const { run, bloom } of this.#runs) {
      if (bloom && !bloom.mayContain(aggregateTypeCode, aggregateId)) continue;
      all.push(...run.entriesOf(aggregateTypeCode, aggregateId));
    }
    const recent = this.#byInstance.get(aggregateTypeCode)?.get(aggregateId);
    if (recent) all.push(...recent);
    return all;
  }

  /** Whether enough index follows the last checkpoint for another one. */
  due(indexEnd: number): boolean {
    return indexEnd - this.#checkpointedEnd >= this.#policy.checkpointIndexBytes;
  }

  /**
   * Writes the memtable as a run (merging runs of one tier), appends the pending position entries,
   * syncs them, then replaces the checkpoint. The log up to `point.indexEnd` must be synced.
   */
  checkpoint(point: LogPoint): Checkpoint {
    this.spill(point.indexEnd);
    if (this.#pendingPositions.length > 0) {
      appendPositionEntries(
        this.#io,
        joinPath(this.#folder, POSITIONS_FILE),
        this.#positionCount,
        this.#pendingPositions,
      );
      this.#positionCount += this.#pendingPositions.length;
      this.#pendingPositions = [];
    }
    // The new files' entries must be durable before a checkpoint names them.
    this.#io.fsyncDir(this.#folder);
    const checkpoint: Checkpoint = {
      sequence: ++this.#sequence,
      registryEnd: point.registryEnd,
      indexEnd: point.indexEnd,
      nextPosition: point.nextPosition,
      lastGeneration: point.lastGeneration,
      lastTimestamp: point.lastTimestamp,
      positionEntries: this.#positionCount,
      nextRunId: this.#nextRunId,
      runs: this.#runs.map((r) => r.info),
      dataEnds: [...point.dataEnds].map(([aggregateTypeCode, end]) => ({
        aggregateTypeCode,
        segment: end.segment,
        end: end.end,
      })),
    };
    writeCheckpoint(this.#io, this.#folder, checkpoint);
    this.#checkpointedEnd = point.indexEnd;
    this.#runsChanged = false;
    for (const file of this.#obsolete.splice(0)) this.#unlink(file);
    return checkpoint;
  }

  /**
   * Writes the memtable (batches up to index offset `indexTo`) as a run, merging tiers. Until a
   * checkpoint lists it, a crash leaves the run unreferenced and the next open removes it.
   */
  spill(indexTo: number): void {
    if (this.#memtable.length > 0) {
      const entries = this.#memtableInRunOrder();
      const runId = this.#nextRunId++;
      const meta = { runId, indexFrom: this.#memtableFrom, indexTo };
      const entryCount = writeRun(this.#io, this.#runPath(runId), entries, meta);
      writeBloom(this.#io, this.#bloomPath(runId), entries, entryCount);
      this.#pushRun(runId, entryCount, indexTo);
      this.#memtable = [];
      this.#byInstance = new Map();
      this.#mergeTiers();
    }
    this.#memtableFrom = indexTo;
  }

  /**
   * The memtable's entries in run order (type code, instance, first version) without comparing
   * entries: each instance's list is already in version order (batches are added in commit order),
   * so only the instances are sorted, the ids of each type code by a native typed-array sort.
   */
  #memtableInRunOrder(): RunEntry[] {
    const sorted: RunEntry[] = new Array<RunEntry>(this.#memtable.length);
    let at = 0;
    const codes = [...this.#byInstance.keys()].sort((a, b) => a - b);
    for (const code of codes) {
      const byId = this.#byInstance.get(code)!;
      const ids = new BigUint64Array(byId.size);
      let i = 0;
      for (const id of byId.keys()) ids[i++] = id;
      ids.sort();
      for (const id of ids) for (const entry of byId.get(id)!) sorted[at++] = entry;
    }
    return sorted;
  }

  close(): void {
    this.#merge?.job.abort();
    this.#merge = undefined;
    for (const { run, bloom } of this.#runs) {
      run.close();
      bloom?.close();
    }
    this.#runs = [];
  }

  #pushRun(runId: number, entryCount: number, indexTo: number): void {
    const file = runFileName(runId);
    const run = InstanceRun.open(this.#io, this.#runPath(runId), this.#cache, `${this.#name}/${file}`);
    this.#runs.push({ run, bloom: this.#openBloom(runId), info: { runId, entryCount, indexTo } });
  }

  #openBloom(runId: number): InstanceBloom | undefined {
    const file = bloomFileName(runId);
    return InstanceBloom.open(this.#io, this.#bloomPath(runId), this.#cache, `${this.#name}/${file}`);
  }

  #bloomPath(runId: number): string {
    return joinPath(this.#folder, bloomFileName(runId));
  }

  /**
   * Advances the merge in progress by about `entries` entries (RunWriteJob steps): merges are spread
   * over the append calls that follow the checkpoint that started them, so no commit waits for a
   * whole merge. A finished merge takes its sources' place at once (it holds the same batches); the
   * next checkpoint names it, and its sources are removed after that.
   */
  advanceMerge(entries: number): void {
    const merge = this.#merge;
    if (!merge?.job.step(entries)) return;
    this.#merge = undefined;
    const { runId, sources } = merge;
    merge.bloom.write(this.#io, this.#bloomPath(runId));
    const file = runFileName(runId);
    const run = InstanceRun.open(this.#io, this.#runPath(runId), this.#cache, `${this.#name}/${file}`);
    const merged: OpenRun = {
      run,
      bloom: this.#openBloom(runId),
      info: { runId, entryCount: merge.job.entryCount, indexTo: merge.indexTo },
    };
    this.#runs.splice(this.#runs.indexOf(sources[0]!), sources.length, merged);
    for (const r of sources) {
      r.run.close();
      r.bloom?.close();
      this.#obsolete.push(runFileName(r.info.runId), bloomFileName(r.info.runId));
    }
    this.#runsChanged = true;
    this.#mergeTiers();
  }

  /** Finishes the merge in progress, and any it leads to (before a final checkpoint). */
  finishMerges(): void {
    while (this.#merge) this.advanceMerge(Number.POSITIVE_INFINITY);
  }

  /** Whether a checkpoint would change anything: index past the last one, or runs merged since. */
  hasNews(indexEnd: number): boolean {
    return indexEnd > this.#checkpointedEnd || this.#runsChanged;
  }

  /**
   * Size-tiered merging: a run's tier is how many times fanIn its size is over the smallest run's;
   * when the newest fanIn runs share a tier, a merge of them starts (one at a time; advanceMerge
   * carries it out). A lookup reads every run, so their number stays about
   * (fanIn − 1) × log_fanIn(batches).
   */
  #mergeTiers(): void {
    if (this.#merge) return;
    const fanIn = this.#policy.runFanIn;
    const n = this.#runs.length;
    if (n < fanIn) return;
    const base = Math.max(1, Math.min(...this.#runs.map((r) => r.info.entryCount)));
    const tier = (r: OpenRun) => Math.floor(Math.log(r.info.entryCount / base) / Math.log(fanIn) + 1e-9);
    const newest = this.#runs.slice(n - fanIn);
    const t = tier(newest[newest.length - 1]!);
    if (!newest.every((r) => tier(r) <= t)) return;
    const runId = this.#nextRunId++;
    const meta = {
      runId,
      indexFrom: newest[0]!.run.meta.indexFrom,
      indexTo: newest[fanIn - 1]!.info.indexTo,
    };
    const bloom = new BloomBuilder(newest.reduce((sum, r) => sum + r.info.entryCount, 0));
    const job = startMerge(
      this.#io,
      newest.map((r) => r.run),
      this.#runPath(runId),
      meta,
      (entry) => bloom.add(entry.aggregateTypeCode, entry.aggregateId),
    );
    this.#merge = { job, sources: newest, runId, indexTo: meta.indexTo, bloom };
  }

  #runPath(runId: number): string {
    return joinPath(this.#folder, runFileName(runId));
  }

  /** Removes run files that no checkpoint lists (left by a crash, or replaced by a merge). */
  #removeUnlisted(listed: Set<number>): void {
    if (!this.#io.exists(this.#folder)) return;
    for (const name of this.#io.readdir(this.#folder)) {
      const runId = parseRunFileName(name) ?? parseBloomFileName(name);
      if (runId !== undefined && !listed.has(runId)) this.#unlink(name);
    }
  }

  #unlink(file: string): void {
    try {
      this.#io.unlink(joinPath(this.#folder, file));
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'ENOENT') throw err;
    }
  }
}
