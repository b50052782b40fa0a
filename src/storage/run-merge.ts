import type { FileIO } from './file-io.js';
import {
  compareRunEntries,
  type InstanceRun,
  type RunEntry,
  type RunMeta,
  RunWriteJob,
} from './instance-run.js';

/**
 * Merging instance runs into one (the layout is in instance-run.ts): a k-way merge over each run's
 * sequential scan (InstanceRun.entries, 256 KiB per run at a time), streamed into writeRun, so
 * memory stays bounded by the number of runs whatever their sizes. Every input block is CRC-checked
 * on the way (CORRUPT_DATA from the damaged run; the partial output is removed).
 */

/** A run's next entry and the rest of its scan, ordered in the heap by the entry. */
interface RunCursor {
  entry: RunEntry;
  readonly rest: Iterator<RunEntry>;
}

/**
 * Writes the sorted union of `runs` to `path` (created new) as run `meta` and returns its entry
 * count. The runs' index ranges must be disjoint and within [meta.indexFrom, meta.indexTo)
 * (RangeError otherwise); an entry present in two runs is refused by writeRun (RangeError).
 */
export function mergeRuns(io: FileIO, runs: InstanceRun[], path: string, meta: RunMeta): number {
  const job = startMerge(io, runs, path, meta);
  job.step(Number.POSITIVE_INFINITY);
  return job.entryCount;
}

/**
 * mergeRuns in steps (RunWriteJob.step), for a merge spread over many calls; `onEntry` sees every
 * merged entry as it is written (to build the run's filter alongside). The runs must stay open
 * until the job is done or aborted.
 */
export function startMerge(
  io: FileIO,
  runs: InstanceRun[],
  path: string,
  meta: RunMeta,
  onEntry?: (entry: RunEntry) => void,
): RunWriteJob {
  checkRanges(runs, meta);
  return new RunWriteJob(io, path, onEntry ? tap(mergedEntries(runs), onEntry) : mergedEntries(runs), meta);
}

function* tap(entries: Iterable<RunEntry>, onEntry: (entry: RunEntry) => void): Generator<RunEntry> {
  for (const entry of entries) {
    onEntry(entry);
    yield entry;
  }
}

function checkRanges(runs: readonly InstanceRun[], meta: RunMeta): void {
  const ranges = runs.map((run) => run.meta).sort((a, b) => a.indexFrom - b.indexFrom);
  let end = meta.indexFrom;
  for (const range of ranges) {
    if (range.indexFrom < end || range.indexTo > meta.indexTo) {
      throw new RangeError(
        `run ${range.runId} holds index range [${range.indexFrom}, ${range.indexTo}), which overlaps another run or lies outside [${meta.indexFrom}, ${meta.indexTo})`,
      );
    }
    end = range.indexTo;
  }
}

function* mergedEntries(runs: readonly InstanceRun[]): Generator<RunEntry> {
  const heap: RunCursor[] = [];
  for (const run of runs) {
    const rest = run.entries()[Symbol.iterator]();
    const first = rest.next();
    if (first.done) continue;
    heap.push({ entry: first.value, rest });
    siftUp(heap, heap.length - 1);
  }
  while (heap.length > 0) {
    const smallest = heap[0]!;
    yield smallest.entry;
    const next = smallest.rest.next();
    if (next.done) {
      const last = heap.pop()!;
      if (heap.length === 0) break;
      heap[0] = last;
    } else {
      smallest.entry = next.value;
    }
    siftDown(heap, 0);
  }
}

function siftUp(heap: RunCursor[], at: number): void {
  const cursor = heap[at]!;
  while (at > 0) {
    const parent = (at - 1) >>> 1;
    if (compareRunEntries(heap[parent]!.entry, cursor.entry) <= 0) break;
    heap[at] = heap[parent]!;
    at = parent;
  }
  heap[at] = cursor;
}

function siftDown(heap: RunCursor[], at: number): void {
  const cursor = heap[at]!;
  const length = heap.length;
  for (;;) {
    let child = 2 * at + 1;
    if (child >= length) break;
    if (child + 1 < length && compareRunEntries(heap[child + 1]!.entry, heap[child]!.entry) < 0) child++;
    if (compareRunEntries(heap[child]!.entry, cursor.entry) >= 0) break;
    heap[at] = heap[child]!;
    at = child;
  }
  heap[at] = cursor;
}
