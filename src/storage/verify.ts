import { crc32 } from '../crc.js';
import { STORAGE_NAME_PATTERN } from '../model/names.js';
import { type FileIO, readWholeFile, realFileIO } from './file-io.js';
import { INDEX_FILE, joinPath, REGISTRY_FILE, segmentFileName } from './format.js';
import { listSegments } from './recovery.js';
import { newIndexScanState, scanIndex, scanRegistry } from './scan.js';

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
   * 'corrupt': damage inside the durable region (never cut automatically).
   */
  severity: 'tail' | 'corrupt';
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
}

export function verifyStore(
  dir: string,
  onProgress?: (progress: VerifyProgress) => void,
  options: VerifyOptions = {},
): VerifyReport {
  const io = options.io ?? realFileIO;
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
  const folder = joinPath(dir, name);
  const segments = listSegments(io, folder);
  const registryBytes = readWholeFile(io, joinPath(folder, REGISTRY_FILE));
  const indexBytes = readWholeFile(io, joinPath(folder, INDEX_FILE));
  let segmentBytes = 0;
  for (const sizes of segments.values()) for (const size of sizes.values()) segmentBytes += size;
  const result: VerifyDomainReport = {
    domain: name,
    registryRecords: 0,
    indexRecords: 0,
    events: 0,
    dataBytes: 0,
    fileBytes: registryBytes.byteLength + indexBytes.byteLength + segmentBytes,
  };

  const registryScan = scanRegistry(registryBytes, `${name}/${REGISTRY_FILE}`);
  result.registryRecords = registryScan.registry.records;
  if (registryScan.damage) problems.push(asProblem(registryScan.damage));
  const registry = registryScan.registry;

  const fds = new Map<string, number>();
  let buffer = new Uint8Array(64 * 1024);
  try {
    const state = newIndexScanState(registry);
    const scan = scanIndex(indexBytes, `${name}/${INDEX_FILE}`, state, {
      segmentSize: (code, segment) => segments.get(registry.aggregateTypes[code]!)?.get(segment) ?? -1,
      onRecord: (record, _bytes, view) => {
        result.indexRecords++;
        result.events += record.eventCount;
        if (record.dataLength > 0) {
          const file = `${name}/${segmentFileName(registry.aggregateTypes[record.aggregateTypeCode]!, record.dataSegment)}`;
          let fd = fds.get(file);
          if (fd === undefined) {
            fd = io.open(joinPath(dir, file), 'read');
            fds.set(file, fd);
          }
          if (buffer.byteLength < record.dataLength) buffer = new Uint8Array(record.dataLength);
          io.read(fd, buffer, 0, record.dataLength, record.dataOffset);
          let at = 0;
          for (let i = 0; i < record.eventCount; i++) {
            const header = record.headersOffset + i * 8;
            const length = view.getUint16(header, true);
            const crc = view.getUint32(header + 4, true);
            if (crc32(buffer.subarray(at, at + length)) !== crc) {
              problems.push({
                file,
                offset: record.dataOffset + at,
                reason: 'event data fails its CRC',
                severity: 'corrupt',
              });
            }
            at += length;
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
      },
    });
    if (scan.damage) problems.push(asProblem(scan.damage));
    if (!scan.damage) {
      for (const [aggregateType, sizes] of segments) {
        const code = registry.aggregateCode(aggregateType);
        const end = code >= 0 ? (state.dataEnds.get(code) ?? { segment: 0, end: 0 }) : undefined;
        for (const [segment, size] of sizes) {
          const file = `${name}/${aggregateType}.${segment}`;
          if (end === undefined || segment > end.segment) {
            if (size > 0)
              problems.push({ file, offset: 0, reason: 'unreferenced data file', severity: 'tail' });
          } else if (segment === end.segment && size > end.end) {
            problems.push({
              file,
              offset: end.end,
              reason: 'unreferenced data after the last record',
              severity: 'tail',
            });
          }
        }
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

function asProblem(damage: { file: string; offset: number; reason: string; tail: boolean }): VerifyProblem {
  return {
    file: damage.file,
    offset: damage.offset,
    reason: damage.tail ? `${damage.reason} (torn tail)` : damage.reason,
    severity: damage.tail ? 'tail' : 'corrupt',
  };
}
