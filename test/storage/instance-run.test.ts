import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hasCode, RingStoreError } from '../../src/errors.js';
import { crc32 } from '../../src/model/crc.js';
import { BlockCache, CACHE_BLOCK_BYTES } from '../../src/storage/block-cache.js';
import { FaultInjectingFileIO } from '../../src/storage/fault-io.js';
import type { FileIO } from '../../src/storage/file-io.js';
import {
  compareRunEntries,
  InstanceRun,
  parseRunFileName,
  RUN_ENTRIES_PER_BLOCK,
  RUN_ENTRY_BYTES,
  type RunEntry,
  type RunMeta,
  RunWriteJob,
  runFileName,
  writeRun,
} from '../../src/storage/instance-run.js';
import { mergeRuns, startMerge } from '../../src/storage/run-merge.js';
import { mulberry32 } from '../support/prng.js';

/**
 * Instance runs against a sorted-array model: random logs (many instances and aggregate types, edge
 * ids, one instance with hundreds of batches) written as runs, split and merged; every lookup for
 * present and absent keys equals the model; any flipped byte and any garbled file gives CORRUPT_DATA
 * and never a wrong answer or another error.
 */
const SEED = Number(process.env.RINGSTORE_SEED ?? 20_261_124);
const DIR = '/runs';
const MAX_U64 = (1n << 64n) - 1n;
const TYPE_CODES = [0, 1, 7, 255, 256, 65_535];
const EDGE_IDS = [1n, 2n, 0xffff_ffffn, 0x1_0000_0000n, 0x1_0000_0001n, 1n << 63n, MAX_U64 - 1n, MAX_U64];

interface LogShape {
  seed: number;
  batches: number;
  instances: number;
  types: number;
}

const logShape = fc.record({
  seed: fc.integer({ min: 0, max: 0x7fff_ffff }),
  batches: fc.integer({ min: 0, max: 700 }),
  instances: fc.integer({ min: 1, max: 40 }),
  types: fc.integer({ min: 1, max: TYPE_CODES.length }),
});

const keyOf = (type: number, id: bigint): string => `${type}:${id}`;

/**
 * A log of batches in index order: instance 0 takes about half of them (so it spans blocks once
 * there are a few hundred), versions follow each instance's event counts, offsets grow.
 */
function buildLog(shape: LogShape): { log: RunEntry[]; end: number } {
  const random = mulberry32(shape.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const types = TYPE_CODES.slice(0, shape.types);
  // Drawn keys may repeat (edge ids): one instance, one version counter, per key.
  const byKey = new Map<string, { aggregateTypeCode: number; aggregateId: bigint; version: number }>();
  for (let i = 0; i < shape.instances; i++) {
    const aggregateTypeCode = pick(types);
    const aggregateId =
      random() < 0.4
        ? pick(EDGE_IDS)
        : (BigInt(Math.floor(random() * 2 ** 32)) << 32n) | BigInt(1 + Math.floor(random() * (2 ** 32 - 1)));
    const key = keyOf(aggregateTypeCode, aggregateId);
    if (!byKey.has(key)) byKey.set(key, { aggregateTypeCode, aggregateId, version: 0 });
  }
  const instances = [...byKey.values()];
  const log: RunEntry[] = [];
  let offset = 16;
  let generation = 1;
  for (let b = 0; b < shape.batches; b++) {
    const instance = random() < 0.5 ? instances[0]! : pick(instances);
    const eventCount = random() < 0.05 ? 0xffff_ffff : 1 + Math.floor(random() * 5);
    log.push({
      aggregateTypeCode: instance.aggregateTypeCode,
      aggregateId: instance.aggregateId,
      firstVersion: instance.version + 1,
      eventCount,
      generation,
      indexOffset: offset,
      hasKey: random() < 0.3,
    });
    instance.version += eventCount;
    if (random() < 0.6) generation++;
    offset += 92 + Math.floor(random() * 400);
  }
  return { log, end: offset };
}

/** The model: entries sorted by (type, id, version), compared without the module's comparator. */
function sortedModel(entries: readonly RunEntry[]): RunEntry[] {
  return [...entries].sort((a, b) =>
    a.aggregateTypeCode !== b.aggregateTypeCode
      ? a.aggregateTypeCode - b.aggregateTypeCode
      : a.aggregateId !== b.aggregateId
        ? a.aggregateId < b.aggregateId
          ? -1
          : 1
        : a.firstVersion - b.firstVersion,
  );
}

function modelByInstance(sorted: readonly RunEntry[]): Map<string, RunEntry[]> {
  const byKey = new Map<string, RunEntry[]>();
  for (const entry of sorted) {
    const key = keyOf(entry.aggregateTypeCode, entry.aggregateId);
    const list = byKey.get(key) ?? [];
    list.push(entry);
    byKey.set(key, list);
  }
  return byKey;
}

/** Every present instance and its neighbours (most of them absent), and keys out of range. */
function queryKeys(sorted: readonly RunEntry[]): [number, bigint][] {
  const keys = new Map<string, [number, bigint]>();
  const add = (type: number, id: bigint) => keys.set(keyOf(type, id), [type, id]);
  for (const { aggregateTypeCode: type, aggregateId: id } of sorted) {
    add(type, id);
    if (id < MAX_U64) add(type, id + 1n);
    if (id > 0n) add(type, id - 1n);
    if (type < 65_535) add(type + 1, id);
    if (type > 0) add(type - 1, id);
  }
  add(0, 0n);
  add(3, 5n);
  add(65_535, MAX_U64);
  add(65_536, 1n);
  add(-1, 1n);
  add(1, -1n);
  add(1, MAX_U64 + 1n);
  return [...keys.values()];
}

function newIo(): FaultInjectingFileIO {
  const io = new FaultInjectingFileIO();
  io.mkdir(DIR);
  return io;
}

const runPath = (runId: number) => `${DIR}/${runFileName(runId)}`;

function expectLookupsEqualModel(run: InstanceRun, sorted: readonly RunEntry[]): void {
  const byKey = modelByInstance(sorted);
  const keys = queryKeys(sorted);
  const found = keys.map(([type, id]) => ({
    key: keyOf(type, id),
    all: run.entriesOf(type, id),
    last: run.lastOf(type, id),
  }));
  const expected = keys.map(([type, id]) => {
    const all = byKey.get(keyOf(type, id)) ?? [];
    return { key: keyOf(type, id), all, last: all.at(-1) };
  });
  expect(found).toEqual(expected);
}

/** The action's result, or 'corrupt' when it threw CORRUPT_DATA naming `file`; any other error fails. */
function corruptOr<T>(file: string, action: () => T): T | 'corrupt' {
  try {
    return action();
  } catch (err) {
    if (err instanceof RingStoreError && err.code === 'CORRUPT_DATA' && err.details.file === file) {
      return 'corrupt';
    }
    throw err;
  }
}

describe(`instance runs (seed ${SEED})`, () => {
  it('names run files', () => {
    expect(runFileName(7)).toBe('instances-7.run');
    expect(parseRunFileName('instances-7.run')).toBe(7);
    expect(parseRunFileName('instances-4294967295.run')).toBe(0xffff_ffff);
    // 'instances.7' would be data segment 7 of an aggregate type named 'instances'.
    for (const name of [
      'instances-4294967296.run',
      'instances-07.run',
      'instances-.run',
      'instances-7.run.tmp',
      'instances.7',
      'x.7',
    ]) {
      expect(parseRunFileName(name), name).toBeUndefined();
    }
    expect(() => runFileName(-1)).toThrow(RangeError);
  });

  it('property: lookups and the full scan equal the sorted model', () => {
    fc.assert(
      fc.property(logShape, fc.integer({ min: 0, max: 6 }), (shape, cacheBlocks) => {
        const io = newIo();
        const { log, end } = buildLog(shape);
        const sorted = sortedModel(log);
        const meta: RunMeta = { runId: shape.seed, indexFrom: 16, indexTo: end };
        expect(writeRun(io, runPath(meta.runId), sortedModel(log), meta)).toBe(log.length);
        expect(io.fileContent(runPath(meta.runId)).byteLength).toBe(
          (1 + Math.ceil(log.length / RUN_ENTRIES_PER_BLOCK)) * CACHE_BLOCK_BYTES,
        );
        const cache = new BlockCache(cacheBlocks * CACHE_BLOCK_BYTES);
        const run = InstanceRun.open(io, runPath(meta.runId), cache, 'd/run');
        expect(run.meta).toEqual(meta);
        expect(run.entryCount).toBe(log.length);
        expectLookupsEqualModel(run, sorted);
        expect([...run.entries()]).toEqual(sorted);
        expect(cache.stats().bytes).toBeLessThanOrEqual(cacheBlocks * CACHE_BLOCK_BYTES);
        run.close();
        expect(cache.stats().bytes).toBe(0);
      }),
      { seed: SEED, numRuns: 40 },
    );
  });

  it('finds an instance of hundreds of batches across blocks, and serves repeats from the cache', () => {
    const io = newIo();
    const entry = (type: number, id: bigint, version: number): RunEntry => ({
      aggregateTypeCode: type,
      aggregateId: id,
      firstVersion: version,
      eventCount: 1,
      generation: version,
      indexOffset: version * 100,
      hasKey: version % 2 === 0,
    });
    const big = Array.from({ length: 500 }, (_, v) => entry(2, 1n << 40n, v + 1));
    const entries = [
      entry(1, MAX_U64, 1),
      entry(2, 5n, 1),
      ...big,
      entry(2, (1n << 40n) + 1n, 1),
      entry(3, 1n, 9),
    ];
    writeRun(io, runPath(1), entries, { runId: 1, indexFrom: 0, indexTo: 1 << 20 });
    const cache = new BlockCache(64 * CACHE_BLOCK_BYTES);
    const run = InstanceRun.open(io, runPath(1), cache, 'd/instances-1.run');
    expect(run.entriesOf(2, 1n << 40n)).toEqual(big);
    expect(run.lastOf(2, 1n << 40n)).toEqual(big.at(-1));
    expect(run.entriesOf(2, (1n << 40n) - 1n)).toEqual([]);
    const warm = cache.stats();
    expect(warm.misses).toBe(5);
    expect(run.entriesOf(2, 1n << 40n)).toHaveLength(500);
    expect(run.lastOf(3, 1n)).toEqual(entries.at(-1));
    expect(run.lastOf(1, MAX_U64)).toEqual(entries[0]);
    expect(cache.stats()).toMatchObject({ misses: warm.misses });
    run.close();
    expect(() => run.entriesOf(2, 5n)).toThrow(expect.objectContaining({ code: 'STORE_CLOSED' }));
    run.close();
  });

  it('an empty run is valid and finds nothing', () => {
    const io = newIo();
    expect(writeRun(io, runPath(3), [], { runId: 3, indexFrom: 5, indexTo: 5 })).toBe(0);
    const run = InstanceRun.open(io, runPath(3), new BlockCache(0), 'd/instances-3.run');
    expect(run.entriesOf(0, 1n)).toEqual([]);
    expect(run.lastOf(0, 1n)).toBeUndefined();
    expect([...run.entries()]).toEqual([]);
    run.close();
  });

  it('property: mergeRuns of contiguous slices of a log equals the sorted log', () => {
    fc.assert(
      fc.property(
        logShape,
        fc.array(fc.nat(), { minLength: 1, maxLength: 5, size: 'max' }),
        (shape, cutDraws) => {
          const io = newIo();
          const { log, end } = buildLog(shape);
          const cuts = [...new Set([0, ...cutDraws.map((d) => d % (log.length + 1)), log.length])].sort(
            (a, b) => a - b,
          );
          const boundary = (cut: number) => (cut < log.length ? log[cut]!.indexOffset : end);
          const cache = new BlockCache(4 * CACHE_BLOCK_BYTES);
          const runs = cuts.slice(1).map((cut, j) => {
            const meta = { runId: j, indexFrom: boundary(cuts[j]!), indexTo: boundary(cut) };
            writeRun(io, runPath(j), sortedModel(log.slice(cuts[j], cut)), meta);
            return InstanceRun.open(io, runPath(j), cache, `d/instances-${j}.run`);
          });
          const meta = { runId: 99, indexFrom: boundary(0), indexTo: end };
          expect(mergeRuns(io, runs.toReversed(), runPath(99), meta)).toBe(log.length);
          const merged = InstanceRun.open(io, runPath(99), cache, 'd/instances-99.run');
          const sorted = sortedModel(log);
          expect([...merged.entries()]).toEqual(sorted);
          expectLookupsEqualModel(merged, sorted);
        },
      ),
      { seed: SEED, numRuns: 25 },
    );
  });

  it('mergeRuns refuses overlapping index ranges and ranges outside its own', () => {
    const io = newIo();
    const entry = (id: bigint, indexOffset: number): RunEntry => ({
      aggregateTypeCode: 1,
      aggregateId: id,
      firstVersion: 1,
      eventCount: 1,
      generation: 1,
      indexOffset,
      hasKey: false,
    });
    writeRun(io, runPath(1), [entry(1n, 0)], { runId: 1, indexFrom: 0, indexTo: 100 });
    writeRun(io, runPath(2), [entry(2n, 50)], { runId: 2, indexFrom: 50, indexTo: 200 });
    writeRun(io, runPath(3), [entry(1n, 300)], { runId: 3, indexFrom: 200, indexTo: 400 });
    const cache = new BlockCache(0);
    const [a, b, c] = [1, 2, 3].map((n) => InstanceRun.open(io, runPath(n), cache, `d/instances-${n}.run`));
    expect(() => mergeRuns(io, [a!, b!], runPath(9), { runId: 9, indexFrom: 0, indexTo: 200 })).toThrow(
      RangeError,
    );
    expect(() => mergeRuns(io, [a!, c!], runPath(9), { runId: 9, indexFrom: 0, indexTo: 300 })).toThrow(
      RangeError,
    );
    // Disjoint ranges but the same batch key twice: refused by writeRun, nothing left behind.
    expect(() => mergeRuns(io, [a!, c!], runPath(9), { runId: 9, indexFrom: 0, indexTo: 400 })).toThrow(
      RangeError,
    );
    expect(io.exists(runPath(9))).toBe(false);
  });

  it('writeRun refuses unsorted entries, fields out of range and an existing file, and leaves no partial file', () => {
    const io = newIo();
    const entry: RunEntry = {
      aggregateTypeCode: 4,
      aggregateId: 9n,
      firstVersion: 3,
      eventCount: 2,
      generation: 1,
      indexOffset: 0,
      hasKey: false,
    };
    const meta = { runId: 5, indexFrom: 0, indexTo: 10 };
    const many = Array.from({ length: 3000 }, (_, i) => ({ ...entry, firstVersion: i + 1 }));
    for (const bad of [
      [...many, entry],
      [entry, entry],
      [{ ...entry, aggregateId: 10n }, entry],
      [{ ...entry, aggregateTypeCode: 5, aggregateId: 1n }, entry],
      [{ ...entry, aggregateTypeCode: 65_536 }],
      [{ ...entry, aggregateId: MAX_U64 + 1n }],
      [{ ...entry, eventCount: 2 ** 32 }],
      [{ ...entry, indexOffset: 2 ** 53 }],
      [{ ...entry, generation: -1 }],
    ]) {
      expect(() => writeRun(io, runPath(5), bad, meta)).toThrow(RangeError);
      expect(io.exists(runPath(5))).toBe(false);
    }
    expect(() => writeRun(io, runPath(5), [entry], { runId: 5, indexFrom: 10, indexTo: 9 })).toThrow(
      RangeError,
    );
    writeRun(io, runPath(5), [entry], meta);
    expect(() => writeRun(io, runPath(5), [entry], meta)).toThrow(/exists/);
    for (const kind of ['write', 'fsync'] as const) {
      io.failNth(kind, 1);
      expect(() => writeRun(io, runPath(6), many, { ...meta, runId: 6 })).toThrow(/EIO/);
      expect(io.exists(runPath(6))).toBe(false);
    }
  });

  it('writeRun streams: data blocks are written while entries are still coming, the header last', () => {
    const io = newIo();
    const writes: { position: number; bytes: number; produced: number }[] = [];
    let produced = 0;
    const spy = new Proxy(io, {
      get(target, property) {
        if (property === 'write') {
          return (fd: number, data: Uint8Array, position: number) => {
            writes.push({ position, bytes: data.byteLength, produced });
            target.write(fd, data, position);
          };
        }
        const value = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as FileIO;
    const total = 20_000;
    function* entries(): Generator<RunEntry> {
      for (let i = 0; i < total; i++) {
        produced++;
        yield {
          aggregateTypeCode: 1,
          aggregateId: BigInt(1 + i),
          firstVersion: 1,
          eventCount: 1,
          generation: 1,
          indexOffset: i,
          hasKey: false,
        };
      }
    }
    expect(writeRun(spy, runPath(1), entries(), { runId: 1, indexFrom: 0, indexTo: total })).toBe(total);
    expect(writes[0]!.produced).toBeLessThan(total / 4);
    expect(Math.max(...writes.map((w) => w.bytes))).toBeLessThanOrEqual(16 * CACHE_BLOCK_BYTES);
    expect(writes.at(-1)).toMatchObject({ position: 0, bytes: CACHE_BLOCK_BYTES });
    const run = InstanceRun.open(io, runPath(1), new BlockCache(0), 'd/instances-1.run');
    expect(run.lastOf(1, BigInt(total))?.indexOffset).toBe(total - 1);
  });

  it('a missing file, a run id that differs from the file name, or a short file is CORRUPT_DATA', () => {
    const io = newIo();
    const cache = new BlockCache(0);
    const open = (path: string) => () => InstanceRun.open(io, path, cache, 'd/x');
    const corrupt = expect.objectContaining({
      code: 'CORRUPT_DATA',
      details: expect.objectContaining({ file: 'd/x' }),
    });
    expect(open(runPath(1))).toThrow(corrupt);
    writeRun(io, `${DIR}/other`, [], { runId: 2, indexFrom: 0, indexTo: 0 });
    io.rename(`${DIR}/other`, runPath(1));
    expect(open(runPath(1))).toThrow(corrupt);
    io.rename(runPath(1), runPath(2));
    expect(open(runPath(2))()).toBeInstanceOf(InstanceRun);
    const fd = io.open(runPath(2), 'readwrite');
    io.truncate(fd, 100);
    io.close(fd);
    expect(open(runPath(2))).toThrow(corrupt);
  });

  it('property: a flipped byte anywhere is CORRUPT_DATA, never a wrong answer or another error', () => {
    fc.assert(
      fc.property(
        logShape.map((shape) => ({ ...shape, batches: shape.batches % 400 })),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (shape, where, mask) => {
          const io = newIo();
          const { log, end } = buildLog(shape);
          const sorted = sortedModel(log);
          writeRun(io, runPath(1), sorted, { runId: 1, indexFrom: 16, indexTo: end });
          const bytes = io.fileContent(runPath(1));
          const at = where % bytes.byteLength;
          bytes[at]! ^= mask;
          io.setFileContent(runPath(1), bytes);
          const file = 'd/instances-1.run';
          const run = corruptOr(file, () =>
            InstanceRun.open(io, runPath(1), new BlockCache(3 * CACHE_BLOCK_BYTES), file),
          );
          if (run === 'corrupt') return;
          expect(at).toBeGreaterThanOrEqual(CACHE_BLOCK_BYTES);
          const byKey = modelByInstance(sorted);
          for (const [type, id] of queryKeys(sorted)) {
            const expected = byKey.get(keyOf(type, id)) ?? [];
            const found = corruptOr(file, () => run.entriesOf(type, id));
            if (found !== 'corrupt') expect(found).toEqual(expected);
            const last = corruptOr(file, () => run.lastOf(type, id));
            if (last !== 'corrupt') expect(last).toEqual(expected.at(-1));
          }
          // The instance of the damaged block's first entry cannot be listed without reading it.
          const victim = sorted[(Math.floor(at / CACHE_BLOCK_BYTES) - 1) * RUN_ENTRIES_PER_BLOCK]!;
          expect(corruptOr(file, () => run.entriesOf(victim.aggregateTypeCode, victim.aggregateId))).toBe(
            'corrupt',
          );
          expect(corruptOr(file, () => [...run.entries()])).toBe('corrupt');
        },
      ),
      { seed: SEED, numRuns: 120 },
    );
  });

  it('the full scan refuses blocks that are each sound but out of order between them', () => {
    const io = newIo();
    const entries = Array.from({ length: 3 * RUN_ENTRIES_PER_BLOCK }, (_, i) => ({
      aggregateTypeCode: 1,
      aggregateId: BigInt(1 + i),
      firstVersion: 1,
      eventCount: 1,
      generation: 1,
      indexOffset: i,
      hasKey: false,
    }));
    writeRun(io, runPath(1), entries, { runId: 1, indexFrom: 0, indexTo: entries.length });
    const bytes = io.fileContent(runPath(1));
    const first = bytes.slice(CACHE_BLOCK_BYTES, 2 * CACHE_BLOCK_BYTES);
    bytes.copyWithin(CACHE_BLOCK_BYTES, 2 * CACHE_BLOCK_BYTES, 3 * CACHE_BLOCK_BYTES);
    bytes.set(first, 2 * CACHE_BLOCK_BYTES);
    io.setFileContent(runPath(1), bytes);
    const run = InstanceRun.open(io, runPath(1), new BlockCache(0), 'd/instances-1.run');
    expect(() => [...run.entries()]).toThrow(
      expect.objectContaining({
        code: 'CORRUPT_DATA',
        details: expect.objectContaining({ offset: 2 * CACHE_BLOCK_BYTES + 8 }),
      }),
    );
  });

  it('property: opening and reading garbled files throws nothing but CORRUPT_DATA', () => {
    const garble = fc.record({
      strategy: fc.constantFrom('random', 'overwrite', 'resize', 'rechecked-block', 'rechecked-header'),
      seed: fc.integer({ min: 0, max: 0x7fff_ffff }),
    });
    fc.assert(
      fc.property(
        logShape.map((shape) => ({ ...shape, batches: shape.batches % 300 })),
        garble,
        (shape, { strategy, seed }) => {
          const random = mulberry32(seed);
          const int = (n: number) => Math.floor(random() * n);
          const io = newIo();
          const { log, end } = buildLog(shape);
          const sorted = sortedModel(log);
          writeRun(io, runPath(1), sorted, { runId: 1, indexFrom: 16, indexTo: end });
          let bytes = io.fileContent(runPath(1));
          const view = () => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
          if (strategy === 'random') {
            bytes = Uint8Array.from({ length: int(4 * CACHE_BLOCK_BYTES) }, () => int(256));
            if (bytes.byteLength >= 4 && random() < 0.5) bytes.set([0x52, 0x53, 0x58, 0x02]);
          } else if (strategy === 'overwrite') {
            const from = int(bytes.byteLength);
            for (let i = from; i < Math.min(bytes.byteLength, from + 1 + int(300)); i++) bytes[i] = int(256);
          } else if (strategy === 'resize') {
            const size = random() < 0.5 ? int(bytes.byteLength) : bytes.byteLength + 1 + int(9000);
            const resized = new Uint8Array(size);
            resized.set(bytes.subarray(0, Math.min(size, bytes.byteLength)));
            bytes = resized;
          } else if (strategy === 'rechecked-block' && bytes.byteLength > CACHE_BLOCK_BYTES) {
            // Damage an entry field, the count or the padding of a block, then make its CRC agree.
            const block = CACHE_BLOCK_BYTES * (1 + int(bytes.byteLength / CACHE_BLOCK_BYTES - 1));
            const offset =
              block + (random() < 0.8 ? 8 + int(RUN_ENTRY_BYTES * RUN_ENTRIES_PER_BLOCK) : int(8));
            bytes[offset] = int(256);
            view().setUint32(block + 4092, crc32(bytes.subarray(block, block + 4092)), true);
          } else {
            // A header whose CRC agrees but whose counts or range do not.
            const field = [4, 8, 12, 16, 20, 24, 32, 36][int(8)]!;
            view().setUint32(field, random() < 0.5 ? int(0x1_0000_0000) : int(64), true);
            view().setUint32(40, crc32(bytes.subarray(0, 40)), true);
          }
          io.setFileContent(runPath(1), bytes);
          const file = 'd/instances-1.run';
          const run = corruptOr(file, () =>
            InstanceRun.open(io, runPath(1), new BlockCache(2 * CACHE_BLOCK_BYTES), file),
          );
          if (run === 'corrupt') return;
          for (const [type, id] of queryKeys(sorted).slice(0, 60)) {
            corruptOr(file, () => run.entriesOf(type, id));
            corruptOr(file, () => run.lastOf(type, id));
          }
          corruptOr(file, () => [...run.entries()]);
          run.close();
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('compareRunEntries orders by type, then id as an unsigned 64-bit number, then first version', () => {
    const base: RunEntry = {
      aggregateTypeCode: 1,
      aggregateId: 1n << 63n,
      firstVersion: 5,
      eventCount: 1,
      generation: 1,
      indexOffset: 0,
      hasKey: false,
    };
    expect(compareRunEntries(base, { ...base, aggregateTypeCode: 2, aggregateId: 1n })).toBeLessThan(0);
    expect(compareRunEntries(base, { ...base, aggregateId: 2n })).toBeGreaterThan(0);
    expect(compareRunEntries(base, { ...base, firstVersion: 6 })).toBeLessThan(0);
    expect(compareRunEntries(base, { ...base, eventCount: 9 })).toBe(0);
    expect(hasCode(new RingStoreError('CORRUPT_DATA'), 'CORRUPT_DATA')).toBe(true);
  });
});

describe(`RunWriteJob and startMerge: writes and merges in steps (seed ${SEED})`, () => {
  const entries = (count: number, from = 1): RunEntry[] =>
    Array.from({ length: count }, (_, i) => ({
      aggregateTypeCode: 0,
      aggregateId: BigInt(from + i),
      firstVersion: 1,
      eventCount: 1,
      generation: 1,
      indexOffset: (from + i) * 100,
      hasKey: false,
    }));

  it('a run written in steps of any size is the same file as one written at once', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 1, max: 5000 }), (count, step) => {
        const io = newIo();
        const meta = { runId: 1, indexFrom: 0, indexTo: (count + 1) * 100 };
        writeRun(io, runPath(1), entries(count), meta);
        const job = new RunWriteJob(io, runPath(2), entries(count), { ...meta, runId: 2 });
        let steps = 0;
        while (!job.step(step)) steps++;
        // Each step writes ceil(step / 1024) slices of 1,024 entries; the write takes one slice per
        // 1,024 entries and one more to finish (header, sync).
        const slices = Math.floor(count / 1024) + 1;
        expect(steps + 1).toBe(Math.ceil(slices / Math.ceil(step / 1024)));
        expect(job.entryCount).toBe(count);
        const one = io.fileContent(runPath(1));
        const two = io.fileContent(runPath(2));
        // Same bytes but for the run id in the header (and its header CRC).
        expect(Buffer.from(one.subarray(4096)).equals(Buffer.from(two.subarray(4096)))).toBe(true);
        expect(InstanceRun.open(io, runPath(2), new BlockCache(0), 'x').entryCount).toBe(count);
      }),
      { seed: SEED, numRuns: 25 },
    );
  });

  it('a merge in steps sees every entry once, and abort removes the partial file', () => {
    const io = newIo();
    writeRun(io, runPath(1), entries(2500, 1), { runId: 1, indexFrom: 0, indexTo: 300_000 });
    writeRun(io, runPath(2), entries(2500, 3001), { runId: 2, indexFrom: 300_000, indexTo: 600_000 });
    const cache = new BlockCache(0);
    const runs = [1, 2].map((n) => InstanceRun.open(io, runPath(n), cache, `runs/${n}`));
    const seen: bigint[] = [];
    const job = startMerge(io, runs, runPath(3), { runId: 3, indexFrom: 0, indexTo: 600_000 }, (e) =>
      seen.push(e.aggregateId),
    );
    expect(job.step(1024)).toBe(false);
    expect(job.entryCount).toBe(1024);
    while (!job.step(1024));
    expect(seen).toEqual([...entries(2500, 1), ...entries(2500, 3001)].map((e) => e.aggregateId));
    expect(InstanceRun.open(io, runPath(3), cache, 'x').entryCount).toBe(5000);
    const aborted = startMerge(io, runs, runPath(4), { runId: 4, indexFrom: 0, indexTo: 600_000 });
    aborted.step(1024);
    aborted.abort();
    expect(io.listFiles(DIR)).not.toContain(runPath(4));
  });
});
