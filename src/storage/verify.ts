import { STORAGE_NAME_PATTERN } from '../model/names.js';
import { refuseIncomplete } from './build-marker.js';
import { type Checkpoint, readCheckpoint } from './checkpoint.js';
import { type FileIO, realFileIO } from './file-io.js';
import { INDEX_FILE, joinPath, REGISTRY_FILE, segmentFileName } from './format.js';
import type { IndexRecord } from './index-record.js';
import type { NameRegistry } from './name-registry.js';
import { type DomainPlan, firstBadEvent, planDomain } from './recovery-plan.js';
import { checkSegmentHeader, SEGMENT_HEADER_BYTES } from './segment-header.js';
import { RecordColumns, verifyIndexFiles } from './verify-index.js';

/**
 * `ringstore verify`: a read-only, full check of a store directory. Every registry and index record
 * is checked (length, magic, CRC, sequence, references), and every event's data is read back from
 * its segment and checked against the CRC in its header. Nothing is changed; damage is reported
 * with the file (relative to the store directory) and the byte offset.
 */
export interface VerifyProblem {
  file: string;
  offset: number;
  reason: string;
  /**
   * 'tail': a torn tail or unreferenced bytes that recovery cuts on the next open;
   * 'corrupt': damage inside the durable region (never cut automatically);
   * 'index': a derived index file (checkpoint, runs, positions) disagrees with the log, which is
   * intact: remove the domain's `checkpoint` file and the next open rebuilds them.
   */
  severity: 'tail' | 'corrupt' | 'index';
}

export interface VerifyDomainReport {
  domain: string;
  registryRecords: number;
  indexRecords: number;
  events: number;
  /** Payload bytes checked against their CRCs. */
  dataBytes: number;
  /** Bytes of all files of the domain. */
  fileBytes: number;
}

export interface VerifyReport {
  ok: boolean;
  domains: VerifyDomainReport[];
  registryRecords: number;
  indexRecords: number;
  events: number;
  dataBytes: number;
  fileBytes: number;
  problems: VerifyProblem[];
}

export interface VerifyProgress {
  domain: string;
  indexRecords: number;
  events: number;
  dataBytes: number;
}

export interface VerifyOptions {
  io?: FileIO;
  /** Records between two progress calls (default 10,000). */
  progressEvery?: number;
  /** Check a store that its tool is still building (the tool's own last check; build-marker.ts). */
  building?: boolean;
}

export function verifyStore(
  dir: string,
  onProgress?: (progress: VerifyProgress) => void,
  options: VerifyOptions = {},
): VerifyReport {
  const io = options.io ?? realFileIO;
  if (options.building !== true) refuseIncomplete(io, dir);
  const every = options.progressEvery ?? 10_000;
  const report: VerifyReport = {
    ok: true,
    domains: [],
    registryRecords: 0,
    indexRecords: 0,
    events: 0,
    dataBytes: 0,
    fileBytes: 0,
    problems: [],
  };
  const names = io.exists(dir) ? io.readdir(dir) : [];
  for (const name of names) {
    if (!STORAGE_NAME_PATTERN.test(name) || !io.isDirectory(joinPath(dir, name))) continue;
    const domain = verifyDomain(io, dir, name, report.problems, every, onProgress);
    report.domains.push(domain);
    report.registryRecords += domain.registryRecords;
    report.indexRecords += domain.indexRecords;
    report.events += domain.events;
    report.dataBytes += domain.dataBytes;
    report.fileBytes += domain.fileBytes;
  }
  report.ok = report.problems.length === 0;
  return report;
}

function verifyDomain(
  io: FileIO,
  dir: string,
  name: string,
  problems: VerifyProblem[],
  every: number,
  onProgress: ((progress: VerifyProgress) => void) | undefined,
): VerifyDomainReport {
  const result: VerifyDomainReport = {
    domain: name,
    registryRecords: 0,
    indexRecords: 0,
    events: 0,
    dataBytes: 0,
    fileBytes: 0,
  };
  const fds = new Map<string, number>();
  let buffer = new Uint8Array(64 * 1024);
  const columns = new RecordColumns();
  const checkBatch = (record: IndexRecord, view: DataView, registry: NameRegistry) => {
    columns.add(record);
    result.indexRecords++;
    result.events += record.eventCount;
    if (record.dataLength > 0) {
      const file = `${name}/${segmentFileName(registry.aggregateTypes[record.aggregateTypeCode]!, record.dataSegment)}`;
      let fd = fds.get(file);
      if (fd === undefined) {
        fd = io.open(joinPath(dir, file), 'read');
        fds.set(file, fd);
        const header = new Uint8Array(SEGMENT_HEADER_BYTES);
        io.read(fd, header, 0, SEGMENT_HEADER_BYTES, 0);
        const wrong = checkSegmentHeader(header, record.dataSegment, record.aggregateTypeCode);
        if (wrong) problems.push({ file, offset: 0, reason: wrong, severity: 'corrupt' });
      }
      if (buffer.byteLength < record.dataLength) buffer = new Uint8Array(record.dataLength);
      const got = io.read(fd, buffer, 0, record.dataLength, record.dataOffset);
      if (got < record.dataLength) {
        problems.push({
          file,
          offset: record.dataOffset + got,
          reason: 'event data missing',
          severity: 'corrupt',
        });
      } else {
        firstBadEvent(record, view, buffer.subarray(0, record.dataLength), (_event, at) => {
          problems.push({
            file,
            offset: record.dataOffset + at,
            reason: 'event data fails its CRC',
            severity: 'corrupt',
          });
        });
      }
      result.dataBytes += record.dataLength;
    }
    if (onProgress && result.indexRecords % every === 0) {
      onProgress({
        domain: name,
        indexRecords: result.indexRecords,
        events: result.events,
        dataBytes: result.dataBytes,
      });
    }
  };
  try {
    const plan = planDomain(io, dir, name, checkBatch);
    result.registryRecords = plan.registry.records;
    let segmentBytes = 0;
    for (const sizes of plan.segments.values()) for (const size of sizes.values()) segmentBytes += size;
    result.fileBytes = plan.registrySize + plan.indexSize + segmentBytes;
    // Read once: the index files are checked against it, and it vouches for the log's ends.
    const checkpoint = readCheckpoint(io, joinPath(dir, name));
    if (plan.corrupt) problems.push({ ...plan.corrupt, severity: 'corrupt' });
    else {
      for (const problem of verifyIndexFiles(io, dir, name, columns, plan.indexEnd, checkpoint)) {
        problems.push({ ...problem, severity: 'index' });
      }
    }
    const synced = checkpointedEnds(name, plan, checkpoint);
    const shortOf = new Set<string>();
    for (const cut of plan.cuts) {
      const syncedEnd = synced.get(cut.file)?.end ?? 0;
      if (cut.start < syncedEnd) {
        shortOf.add(cut.file);
        problems.push({
          file: cut.file,
          offset: cut.offset,
          reason: `${cut.reason} (below the checkpoint's end ${syncedEnd} of the file: synced bytes are damaged)`,
          severity: 'corrupt',
        });
        continue;
      }
      problems.push({
        file: cut.file,
        offset: cut.offset,
        reason: `${cut.reason} (${cut.whole ? 'unreferenced file' : 'torn tail'}: recovery moves ${cut.end - cut.start} bytes aside)`,
        severity: 'tail',
      });
    }
    // Without any cut, a file can still end below what the checkpoint vouches for (truncated).
    for (const [file, { end, kept }] of synced) {
      if (kept < end && !shortOf.has(file) && !plan.corrupt) {
        problems.push({
          file,
          offset: kept,
          reason: `the file's records end at ${kept}, below the checkpoint's end ${end}: synced bytes are missing`,
          severity: 'corrupt',
        });
      }
    }
  } finally {
    for (const fd of fds.values()) io.close(fd);
  }
  onProgress?.({
    domain: name,
    indexRecords: result.indexRecords,
    events: result.events,
    dataBytes: result.dataBytes,
  });
  return result;
}

/**
 * Per file of the log (as named in problems): the end up to which the domain's checkpoint says its
 * bytes were synced (docs/FORMAT.md, "Checkpoint"), and the end of what the plan keeps of it. A cut
 * below the first, or a kept end short of it, is not a torn tail but damage to acknowledged records.
 * Empty when the checkpoint is missing or does not decode.
 */
function checkpointedEnds(
  domain: string,
  plan: DomainPlan,
  checkpoint: Checkpoint | string | undefined,
): Map<string, { end: number; kept: number }> {
  const ends = new Map<string, { end: number; kept: number }>();
  if (checkpoint === undefined || typeof checkpoint === 'string') return ends;
  ends.set(`${domain}/${REGISTRY_FILE}`, { end: checkpoint.registryEnd, kept: plan.registryEnd });
  ends.set(`${domain}/${INDEX_FILE}`, { end: checkpoint.indexEnd, kept: plan.indexEnd });
  for (const dataEnd of checkpoint.dataEnds) {
    const aggregateType = plan.registry.aggregateTypes[dataEnd.aggregateTypeCode];
    if (aggregateType === undefined || dataEnd.end <= SEGMENT_HEADER_BYTES) continue;
    const kept = plan.segments.get(aggregateType)?.get(dataEnd.segment) ?? 0;
    ends.set(`${domain}/${segmentFileName(aggregateType, dataEnd.segment)}`, { end: dataEnd.end, kept });
  }
  return ends;
}
