import { describe, expect, it } from 'vitest';
import { hasCode, RingStoreError } from '../../src/errors.js';
import { crc32 } from '../../src/model/crc.js';
import { EMPTY_BYTES } from '../../src/model/events.js';
import { validateGetOptions, validateReadOptions } from '../../src/model/queries.js';
import { FaultInjectingFileIO } from '../../src/storage/fault-io.js';
import { decodeIndexRecord, emptyIndexRecord } from '../../src/storage/index-record.js';
import { StorageReader } from '../../src/storage/reader.js';
import { planDomain } from '../../src/storage/recovery-plan.js';
import { SEGMENT_HEADER_BYTES } from '../../src/storage/segment-header.js';
import type { AppendBatch } from '../../src/storage/types.js';
import { verifyStore } from '../../src/storage/verify.js';
import { StorageWriter } from '../../src/storage/writer.js';
import type { StoredEvent } from '../../src/types.js';

/** A hang guard, not a speed limit: these tests take ~20 s alone, several times that on a busy machine. */
const HEAVY_TEST_TIMEOUT_MS = 300_000;

import { mulberry32 } from '../support/prng.js';

/**
 * Reader and recovery fuzz over a small store: single-bit flips at every bit, byte bursts,
 * truncation at every offset, zero-filled and garbage tails, for the index, registry and data files.
 * For every damaged image: nothing throws anything but CORRUPT_DATA, nothing hangs, no read returns
 * an event that differs from what was written (with verifyCrc); damage in a tail is cut, damage
 * inside the durable region is reported with its file and offset, and verifyStore flags every flip.
 */
const SEED = Number(process.env.RINGSTORE_SEED ?? 7_331);
const DIR = '/store';
const ALL = validateReadOptions({ limit: 100_000, verifyCrc: true });

/** The derived index files of a domain folder (docs/FORMAT.md, "Index files"). */
const INDEX_FILES = /\/(checkpoint|positions|instances-\d+\.(run|bloom))$/;

/**
 * A closed store. Without `withIndexFiles`, only its log: the derived index files are removed, so
 * that recovery reads the whole log, as after a crash before the first checkpoint.
 */
function buildStore(withIndexFiles = false): { io: FaultInjectingFileIO; reference: Map<string, string[]> } {
  const random = mulberry32(SEED);
  const io = new FaultInjectingFileIO();
  let now = 5_000;
  const writer = StorageWriter.open(DIR, {
    io,
    clock: () => (now += 2),
    segmentBytes: 64,
    indexExtentBytes: 128,
    dataExtentBytes: 32,
  });
  for (let call = 0; call < 7; call++) {
    const batches: AppendBatch[] = [];
    for (let b = 0; b < 2; b++) {
      const events = Array.from({ length: 1 + Math.floor(random() * 2) }, (_, i) => {
        const data = Uint8Array.from({ length: Math.floor(random() * 24) }, () => Math.floor(random() * 256));
        return {
          type: ['Opened', 'Moved', 'Closed'][(call + i) % 3]!,
          data,
          metadata: EMPTY_BYTES,
          crc: crc32(data),
        };
      });
      batches.push({
        domain: b === 0 || call % 3 === 0 ? 'd' : 'e',
        aggregateType: call % 2 ? 'cart' : 'user',
        aggregateId: BigInt(1 + (call % 3)),
        expectedVersion: 'any',
        idempotencyKey: call % 4 === 1 ? `key-${call}` : undefined,
        events,
      });
    }
    writer.append(batches, 'fsync');
  }
  writer.close();
  if (!withIndexFiles) {
    for (const path of io.listFiles(DIR)) if (INDEX_FILES.test(path)) io.unlink(path);
    for (const domain of ['d', 'e']) io.fsyncDir(`${DIR}/${domain}`);
  }
  return { io, reference: new Map(['d', 'e'].map((d) => [d, readLog(io, d)])) };
}

function line(e: StoredEvent): string {
  return `${e.position} ${e.aggregateType}/${e.aggregateId} v${e.version} g${e.generation} t${e.timestamp} ${e.type} ${e.crc} ${Buffer.from(e.data).toString('hex')}`;
}

function readLog(io: FaultInjectingFileIO, domain: string): string[] {
  const reader = StorageReader.open(DIR, { io });
  try {
    return reader.read(domain, ALL).events.map(line);
  } finally {
    reader.close();
  }
}

function isCorrupt(err: unknown): err is RingStoreError {
  return err instanceof RingStoreError && err.code === 'CORRUPT_DATA';
}

/** Start offsets of the records of an index file (preallocated zeros follow them). */
function recordStarts(bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const starts: number[] = [];
  const record = emptyIndexRecord();
  for (let at = 0; at + 4 <= bytes.byteLength && view.getUint32(at, true) !== 0; at += record.recordLength) {
    expect(decodeIndexRecord(bytes, view, at, record)).toBeUndefined();
    starts.push(at);
  }
  return starts;
}

/** What the records of a store say: the index bytes they vouch for, and where each segment's data ends. */
function layout(io: FaultInjectingFileIO): { vouched: Map<string, number>; dataEnds: Map<string, number> } {
  const vouched = new Map<string, number>();
  const dataEnds = new Map<string, number>();
  for (const domain of ['d', 'e']) {
    planDomain(io, DIR, domain, (record, _view, registry) => {
      vouched.set(
        `${DIR}/${domain}/index`,
        Math.max(vouched.get(`${DIR}/${domain}/index`) ?? 0, record.syncedEnd),
      );
      const file = `${DIR}/${domain}/${registry.aggregateTypes[record.aggregateTypeCode]}.${record.dataSegment}`;
      dataEnds.set(file, Math.max(dataEnds.get(file) ?? 0, record.dataOffset + record.dataLength));
    });
  }
  return { vouched, dataEnds };
}

/** True when no later segment of the same aggregate type exists. */
function isLastSegment(files: string[], path: string): boolean {
  const match = /^(.*)\.(\d+)$/.exec(path)!;
  return !files.includes(`${match[1]}.${Number(match[2]) + 1}`);
}

type Outcome =
  | { kind: 'corrupt'; file: string; offset: number }
  | { kind: 'recovered'; logs: Map<string, string[]> };

const stats = { images: 0, corrupt: 0, cut: 0, intact: 0, crcCaught: 0 };

/** Reads a damaged image without recovery, recovers it, reads again, checks a second recovery is a no-op. */
function examine(
  base: FaultInjectingFileIO,
  path: string,
  content: Uint8Array,
  reference: Map<string, string[]>,
): Outcome {
  stats.images++;
  const image = base.crash();
  image.setFileContent(path, content);

  // The reader alone (no recovery) never shows a wrong event.
  for (const [domain, full] of reference) {
    try {
      const log = readLog(image, domain);
      expect(log).toEqual(full.slice(0, log.length));
    } catch (err) {
      if (!isCorrupt(err)) throw err;
    }
  }

  let writer: StorageWriter;
  try {
    writer = StorageWriter.open(DIR, { io: image });
  } catch (err) {
    if (!isCorrupt(err)) throw err;
    expect(typeof err.details.file).toBe('string');
    expect(typeof err.details.offset).toBe('number');
    stats.corrupt++;
    return { kind: 'corrupt', file: String(err.details.file), offset: Number(err.details.offset) };
  }
  const cut = writer.recovery.length > 0;
  writer.close();
  const again = StorageWriter.open(DIR, { io: image });
  expect(again.recovery).toEqual([]);
  again.close();

  const logs = new Map<string, string[]>();
  for (const [domain, full] of reference) {
    try {
      const log = readLog(image, domain);
      expect(log).toEqual(full.slice(0, log.length));
      logs.set(domain, log);
    } catch (err) {
      if (!isCorrupt(err)) throw err;
      stats.crcCaught++;
      expect(String(err.details.file)).toBe(path.slice(DIR.length + 1));
      logs.set(domain, []);
    }
  }
  if (cut) stats.cut++;
  else stats.intact++;
  return { kind: 'recovered', logs };
}

describe(`reader and recovery fuzz (seed ${SEED}; set RINGSTORE_SEED to change)`, () => {
  const { io: base, reference } = buildStore();
  const files = base.listFiles(DIR);
  const total = (logs: Map<string, string[]>) => [...logs.values()].reduce((n, l) => n + l.length, 0);
  const referenceTotal = total(reference);

  it('builds a store with several files per domain', () => {
    expect(files).toEqual(expect.arrayContaining(['/store/d/index', '/store/d/registry', '/store/e/index']));
    expect(files.filter((f) => /\.\d+$/.test(f)).length).toBeGreaterThan(4);
  });

  it(
    'single-bit flips anywhere: CORRUPT_DATA at a record a later one vouches for, else cut; data damage caught by CRC',
    () => {
      const { vouched, dataEnds } = layout(base);
      for (const path of files) {
        const original = base.fileContent(path);
        const isIndex = path.endsWith('/index');
        const starts = isIndex ? recordStarts(original) : [];
        const recordsEnd = isIndex
          ? starts.at(-1)! + new DataView(original.buffer).getUint32(starts.at(-1)!, true)
          : 0;
        for (let bit = 0; bit < original.byteLength * 8; bit++) {
          const damaged = Uint8Array.from(original);
          damaged[bit >> 3]! ^= 1 << (bit & 7);
          const byte = bit >> 3;
          const outcome = examine(base, path, damaged, reference);
          const image = base.crash();
          image.setFileContent(path, damaged);
          const report = verifyStore(DIR, undefined, { io: image });
          // Bytes past the last batch of a sealed segment are never read and never cut: nothing to see.
          const sealedPadding =
            dataEnds.has(path) && byte >= dataEnds.get(path)! && !isLastSegment(files, path);
          if (!sealedPadding) {
            expect(report.ok, `${path} bit ${bit}: verifyStore saw nothing`).toBe(false);
            // (A damaged header of a segment only unvouched batches use is reported where they are cut.)
            const headerOfSegment = /\.\d+$/.test(path) && byte < SEGMENT_HEADER_BYTES;
            expect(
              headerOfSegment || report.problems.some((p) => p.offset <= byte),
              `${path} bit ${bit}: ${JSON.stringify(report.problems)}`,
            ).toBe(true);
          }
          if (isIndex) {
            const record = starts.filter((s) => s <= byte).at(-1)!;
            if (byte >= recordsEnd || record >= vouched.get(path)!) {
              expect(outcome.kind, `${path} bit ${bit}`).toBe('recovered');
            } else {
              expect(outcome, `${path} bit ${bit}`).toEqual({
                kind: 'corrupt',
                file: path.slice(DIR.length + 1),
                offset: record,
              });
            }
          } else if (/\.\d+$/.test(path)) {
            // Payload damage is not seen by recovery but by every CRC-checked read; damage past the
            // data is cut; the segment header is checked by verify (above) and for unvouched batches.
            expect(outcome.kind).toBe('recovered');
            if (outcome.kind !== 'recovered') continue;
            if (byte >= SEGMENT_HEADER_BYTES && byte < dataEnds.get(path)!) {
              expect(total(outcome.logs)).toBeLessThan(referenceTotal);
            } else if (byte >= SEGMENT_HEADER_BYTES) {
              expect(outcome.logs).toEqual(reference);
            }
          }
        }
      }
    },
    HEAVY_TEST_TIMEOUT_MS,
  );

  it('byte bursts: never a wrong event; reported offsets are at or before the burst', () => {
    const random = mulberry32(SEED + 1);
    for (const path of files) {
      const original = base.fileContent(path);
      for (let trial = 0; trial < 60; trial++) {
        const at = Math.floor(random() * original.byteLength);
        const length = 1 + Math.floor(random() * 24);
        const damaged = Uint8Array.from(original);
        for (let i = at; i < Math.min(original.byteLength, at + length); i++)
          damaged[i] = Math.floor(random() * 256);
        let firstChanged = at;
        while (firstChanged < original.byteLength && damaged[firstChanged] === original[firstChanged])
          firstChanged++;
        const outcome = examine(base, path, damaged, reference);
        // (Damage to a registry's last record can surface in the index that uses its codes.)
        if (outcome.kind === 'corrupt' && outcome.file === path.slice(DIR.length + 1)) {
          expect(outcome.offset).toBeLessThanOrEqual(firstChanged);
        }
      }
    }
  });

  it('truncation at every offset: a prefix survives, cut at a record boundary', () => {
    for (const path of files) {
      const original = base.fileContent(path);
      for (let size = 0; size < original.byteLength; size++) {
        const outcome = examine(base, path, original.subarray(0, size), reference);
        if (outcome.kind === 'recovered') expect(total(outcome.logs)).toBeLessThan(referenceTotal + 1);
        if (path.endsWith('/index')) expect(outcome.kind).toBe('recovered');
      }
    }
  });

  it('zero-filled and garbage tails are cut and lose nothing', () => {
    const random = mulberry32(SEED + 2);
    for (const path of files) {
      const original = base.fileContent(path);
      for (const length of [1, 3, 7, 8, 20, 71, 72, 200, 4096]) {
        for (const fill of ['zero', 'garbage'] as const) {
          const tail = new Uint8Array(length);
          if (fill === 'garbage') for (let i = 0; i < length; i++) tail[i] = Math.floor(random() * 256);
          const damaged = new Uint8Array(original.byteLength + length);
          damaged.set(original);
          damaged.set(tail, original.byteLength);
          const outcome = examine(base, path, damaged, reference);
          expect(outcome.kind, `${path} + ${length} ${fill} bytes`).toBe('recovered');
          if (outcome.kind === 'recovered') expect(outcome.logs).toEqual(reference);
        }
      }
    }
    console.log(
      `fuzz: ${stats.images} damaged images: ${stats.corrupt} reported CORRUPT_DATA, ${stats.cut} cut by recovery, ${stats.crcCaught} caught by read CRC, ${stats.intact} left unchanged by recovery`,
    );
  });
});

/** Every instance of the fuzz store, read in full: `domain type/id` → event lines. */
function readInstances(io: FaultInjectingFileIO, reference: Map<string, string[]>): Map<string, string[]> {
  const reader = StorageReader.open(DIR, { io });
  const instances = new Map<string, string[]>();
  try {
    for (const [domain, log] of reference) {
      for (const key of new Set(log.map((l) => l.split(' ')[1]!))) {
        const [type, id] = key.split('/') as [string, string];
        const got = reader.get(domain, type, BigInt(id), validateGetOptions({ verifyCrc: true }));
        instances.set(`${domain} ${key}`, got.events.map(line));
      }
    }
  } finally {
    reader.close();
  }
  return instances;
}

describe(`index files fuzz (seed ${SEED}; set RINGSTORE_SEED to change)`, () => {
  const { io: base, reference } = buildStore(true);
  const instances = readInstances(base, reference);
  const files = base.listFiles(DIR).filter((f) => INDEX_FILES.test(f));

  it('builds a store with a checkpoint, runs and positions in each domain', () => {
    for (const domain of ['d', 'e']) {
      expect(files).toEqual(
        expect.arrayContaining([`${DIR}/${domain}/checkpoint`, `${DIR}/${domain}/positions`]),
      );
      expect(files.some((f) => f.startsWith(`${DIR}/${domain}/instances-`))).toBe(true);
    }
  });

  it(
    'a flipped bit in an index file: open rebuilds or reads stay right; no wrong event; verify sees it',
    () => {
      const random = mulberry32(SEED + 3);
      let rebuilt = 0;
      let caught = 0;
      for (const path of files) {
        const original = base.fileContent(path);
        const bits = original.byteLength * 8;
        // Every bit of small files; a sample of larger ones (runs are 4 KiB blocks, mostly zeros).
        const picks =
          bits <= 2048
            ? Array.from({ length: bits }, (_, b) => b)
            : Array.from({ length: 600 }, () => Math.floor(random() * bits));
        for (const bit of picks) {
          const damaged = Uint8Array.from(original);
          damaged[bit >> 3]! ^= 1 << (bit & 7);
          const image = base.crash();
          image.setFileContent(path, damaged);
          const label = `${path} bit ${bit}`;
          const report = verifyStore(DIR, undefined, { io: image });
          expect(report.problems.length, `${label}: verify saw nothing`).toBeGreaterThan(0);
          expect(
            report.problems.every((p) => p.severity === 'index'),
            `${label}: ${JSON.stringify(report.problems)}`,
          ).toBe(true);
          // The reader alone answers every read right: it never trusts a damaged index file (a
          // damaged run is replaced by the log for the instance read, damaged positions by a read
          // from the log's start, a damaged checkpoint or run header by the whole log).
          expect(readInstances(image, reference), label).toEqual(instances);
          for (const [domain, full] of reference) expect(readLog(image, domain), label).toEqual(full);
          // The writer opens (a damaged checkpoint or run header makes it rebuild) and answers right;
          // a damaged block it meets later fails it with STORE_FAILED and drops the checkpoint, and
          // the next open rebuilds the index from the log.
          const versions = (writer: StorageWriter) => {
            for (const key of instances.keys()) {
              const [domain, typeAndId] = key.split(' ') as [string, string];
              const [type, id] = typeAndId.split('/') as [string, string];
              expect(writer.version(domain, type, BigInt(id)), `${label}: ${key}`).toBe(
                instances.get(key)!.length,
              );
            }
          };
          const writer = StorageWriter.open(DIR, { io: image });
          expect(writer.recovery, label).toEqual([]);
          try {
            versions(writer);
          } catch (err) {
            if (!hasCode(err, 'STORE_FAILED')) throw err;
            expect(String((err as Error).message)).toMatch(/rebuilds the index/);
            caught++;
            writer.close();
            const again = StorageWriter.open(DIR, { io: image });
            versions(again);
            again.close();
          } finally {
            writer.close();
          }
          const after = image.listFiles(DIR).includes(path) ? image.fileContent(path) : undefined;
          if (after === undefined || Buffer.compare(after, damaged) !== 0) rebuilt++;
        }
      }
      console.log(
        `index files fuzz: ${files.length} files, ${caught} writer failures with STORE_FAILED, ${rebuilt} damaged files rewritten by open`,
      );
    },
    HEAVY_TEST_TIMEOUT_MS,
  );
});
