import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RingStoreError } from '../../src/errors.js';
import { crc32 } from '../../src/model/crc.js';
import { BlockCache } from '../../src/storage/block-cache.js';
import { FaultInjectingFileIO } from '../../src/storage/fault-io.js';
import {
  appendPositionEntries,
  encodePositionEntries,
  POSITION_ENTRY_BYTES,
  type PositionEntry,
  PositionIndex,
} from '../../src/storage/position-index.js';
import { mulberry32 } from '../support/prng.js';

const SEED = Number(process.env.RINGSTORE_SEED ?? 6_464);
const FOLDER = '/d';
const PATH = '/d/positions';
const FILE = 'd/positions';
const PER_BLOCK = 64;

function newFolder(): FaultInjectingFileIO {
  const io = new FaultInjectingFileIO();
  io.mkdir(FOLDER);
  io.fsyncDir('/');
  return io;
}

function openIndex(io: FaultInjectingFileIO, entryCount: number, capacityBytes = 1 << 20): PositionIndex {
  return PositionIndex.open(io, PATH, new BlockCache(capacityBytes), entryCount, FILE);
}

/** The linear-scan model: the last entry the predicate accepts. */
function lastAccepted(
  entries: readonly PositionEntry[],
  accepts: (entry: PositionEntry) => boolean,
): PositionEntry | undefined {
  let found: PositionEntry | undefined;
  for (const entry of entries) if (accepts(entry)) found = entry;
  return found;
}

/** Entries from a start and per-entry steps (firstPosition and indexOffset grow by at least 1). */
function entriesFrom(
  start: PositionEntry,
  steps: readonly { position: number; offset: number; generation: number; time: number }[],
): PositionEntry[] {
  const entries: PositionEntry[] = [];
  let entry = start;
  for (const step of steps) {
    entries.push(entry);
    entry = {
      firstPosition: entry.firstPosition + step.position,
      indexOffset: entry.indexOffset + step.offset,
      generation: entry.generation + step.generation,
      timestamp: entry.timestamp + step.time,
    };
  }
  return entries;
}

/** Increasing entries: a new one every 4096+ index bytes, 1 ms apart, so timestamps are distinct. */
function evenEntries(count: number): PositionEntry[] {
  return Array.from({ length: count }, (_, i) => ({
    firstPosition: 10 + i * 7,
    indexOffset: i * 4100,
    generation: 1 + Math.floor(i / 3),
    timestamp: 1_000 + i,
  }));
}

/** The details of the CORRUPT_DATA error `run` throws, and whether its message starts with the file. */
function corruption(run: () => unknown): Record<string, unknown> {
  try {
    run();
  } catch (err) {
    if (!(err instanceof RingStoreError) || err.code !== 'CORRUPT_DATA') throw err;
    const { file, offset, reason } = err.details;
    return { file, offset, reason, prefixed: err.message.startsWith(`${FILE}: `) };
  }
  throw new Error('expected CORRUPT_DATA');
}

const u53Start = fc.oneof(fc.integer({ min: 0, max: 1_000 }), fc.integer({ min: 0, max: 2 ** 52 }));
const startArb = fc.record({
  firstPosition: u53Start,
  indexOffset: u53Start,
  generation: u53Start,
  timestamp: u53Start,
});
const stepArb = fc.record({
  position: fc.integer({ min: 1, max: 40 }),
  offset: fc.integer({ min: 1, max: 9_000 }),
  generation: fc.constantFrom(0, 0, 0, 1, 2),
  time: fc.constantFrom(0, 0, 1, 1, 7),
});

describe(`PositionIndex (seed ${SEED}; set RINGSTORE_SEED to change)`, () => {
  it('property: atPosition, beforeTime and entry equal a linear scan of the trusted entries', () => {
    fc.assert(
      fc.property(
        startArb,
        fc.array(stepArb, { maxLength: 300 }),
        fc.nat(),
        fc.array(fc.integer({ min: 1, max: 70 }), { minLength: 1, maxLength: 8 }),
        fc.constantFrom(0, 4096, 3 * 4096, 1 << 20),
        fc.uint8Array({ maxLength: 100 }),
        (start, steps, trustedSeed, chunks, capacityBytes, garbage) => {
          const entries = entriesFrom(start, steps);
          const trusted = entries.length === 0 ? 0 : trustedSeed % (entries.length + 1);
          const io = newFolder();
          let from = 0;
          for (let c = 0; from < entries.length; c++) {
            const size = chunks[c % chunks.length]!;
            appendPositionEntries(io, PATH, from, entries.slice(from, from + size));
            from += size;
          }
          if (garbage.byteLength > 0) {
            const fd = io.open(PATH, 'create');
            io.write(fd, garbage, entries.length * POSITION_ENTRY_BYTES);
            io.close(fd);
          }
          const model = entries.slice(0, trusted);
          const index = openIndex(io, trusted, capacityBytes);
          expect(index.entryCount).toBe(trusted);
          const positions = new Set<number>([-1, 0, Number.MAX_SAFE_INTEGER]);
          const times = new Set<number>([-1, 0, Number.MAX_SAFE_INTEGER]);
          for (const entry of entries) {
            for (const delta of [-1, 0, 1]) {
              positions.add(entry.firstPosition + delta);
              times.add(entry.timestamp + delta);
            }
          }
          for (const position of positions) {
            expect(index.atPosition(position), `position ${position}`).toEqual(
              lastAccepted(model, (e) => e.firstPosition <= position),
            );
          }
          for (const time of times) {
            expect(index.beforeTime(time), `time ${time}`).toEqual(
              lastAccepted(model, (e) => e.timestamp < time),
            );
          }
          for (let i = 0; i < trusted; i++) expect(index.entry(i)).toEqual(model[i]);
          expect(() => index.entry(trusted)).toThrow(RangeError);
          expect(() => index.entry(-1)).toThrow(RangeError);
          index.close();
        },
      ),
      { seed: SEED, numRuns: 150 },
    );
  });

  it('every byte flipped in a trusted entry is CORRUPT_DATA for each lookup that reads its block, and only those', () => {
    const entries = evenEntries(150);
    const clean = encodePositionEntries(entries);
    const random = mulberry32(SEED);
    const io = newFolder();
    appendPositionEntries(io, PATH, 0, entries);
    for (let at = 0; at < clean.byteLength; at++) {
      const damaged = Uint8Array.from(clean);
      damaged[at]! ^= 1 + Math.floor(random() * 255);
      io.setFileContent(PATH, damaged);
      const label = `seed ${SEED}, byte ${at}`;
      const victim = Math.floor(at / POSITION_ENTRY_BYTES);
      const block = Math.floor(victim / PER_BLOCK);
      const expected = { file: FILE, offset: victim * POSITION_ENTRY_BYTES, reason: 'crc', prefixed: true };
      const index = openIndex(io, entries.length);
      const other = ((block + 1) % 3) * PER_BLOCK;
      const sameBlock =
        block * PER_BLOCK + (((victim + 5) % PER_BLOCK) % (entries.length - block * PER_BLOCK));
      const observed = [
        index.entry(other),
        corruption(() => index.entry(sameBlock)),
        // A refused block is not cached: the next read checks it again.
        corruption(() => index.entry(victim)),
        corruption(() => index.atPosition(entries[victim]!.firstPosition)),
        corruption(() => index.beforeTime(entries[victim]!.timestamp + 1)),
      ];
      const wanted = [entries[other], expected, expected, expected, expected];
      if (JSON.stringify(observed) !== JSON.stringify(wanted)) expect(observed, label).toEqual(wanted);
      index.close();
    }
  });

  it('ignores damage past the trusted entries, also inside a trusted block', () => {
    const entries = evenEntries(150);
    const trusted = 100;
    const io = newFolder();
    appendPositionEntries(io, PATH, 0, entries);
    const damaged = io.fileContent(PATH);
    for (let at = trusted * POSITION_ENTRY_BYTES; at < damaged.byteLength; at += 5) damaged[at]! ^= 0x5a;
    io.setFileContent(PATH, Uint8Array.from([...damaged, 1, 2, 3]));
    const index = openIndex(io, trusted, 0);
    for (let i = 0; i < trusted; i++) expect(index.entry(i)).toEqual(entries[i]);
    expect(index.atPosition(Number.MAX_SAFE_INTEGER)).toEqual(entries[trusted - 1]);
    expect(index.beforeTime(Number.MAX_SAFE_INTEGER)).toEqual(entries[trusted - 1]);
  });

  it('reports entries with a valid CRC but a bad field or order', () => {
    const entries = evenEntries(70);
    const withCrc = (bytes: Uint8Array, entry: number): Uint8Array => {
      const at = entry * POSITION_ENTRY_BYTES;
      new DataView(bytes.buffer).setUint32(at + 60, crc32(bytes.subarray(at, at + 60)), true);
      return bytes;
    };
    const io = newFolder();
    appendPositionEntries(io, PATH, 0, entries);
    const cases: [string, (bytes: Uint8Array) => void][] = [
      ['field', (bytes) => (bytes[3 * 64 + 40] = 1)],
      ['field', (bytes) => (bytes[3 * 64 + 16 + 7] = 0x80)],
      ['order', (bytes) => bytes.copyWithin(3 * 64, 2 * 64, 3 * 64)],
      ['order', (bytes) => new DataView(bytes.buffer).setUint32(3 * 64 + 24, 0, true)],
    ];
    for (const [reason, damage] of cases) {
      const bytes = encodePositionEntries(entries);
      damage(bytes);
      io.setFileContent(PATH, withCrc(bytes, 3));
      const index = openIndex(io, entries.length);
      expect(corruption(() => index.entry(0))).toEqual({
        file: FILE,
        offset: 3 * 64,
        reason,
        prefixed: true,
      });
      expect(index.entry(64)).toEqual(entries[64]);
    }
  });

  it('refuses a missing or too short file when it should hold entries; needs no file without entries', () => {
    const io = newFolder();
    expect(corruption(() => openIndex(io, 1))).toEqual({
      file: FILE,
      offset: 0,
      reason: 'missing',
      prefixed: true,
    });
    const empty = openIndex(io, 0);
    expect(empty.atPosition(5)).toBeUndefined();
    expect(empty.beforeTime(5)).toBeUndefined();
    expect(() => empty.entry(0)).toThrow(RangeError);
    empty.close();
    appendPositionEntries(io, PATH, 0, evenEntries(3));
    expect(corruption(() => openIndex(io, 4))).toEqual({
      file: FILE,
      offset: 192,
      reason: 'short',
      prefixed: true,
    });
    expect(() => openIndex(io, -1)).toThrow(RangeError);
    expect(openIndex(io, 3).atPosition(Number.MAX_SAFE_INTEGER)).toEqual(evenEntries(3)[2]);
  });

  it('reads each block from disk once while it stays cached, and close drops its blocks', () => {
    const entries = evenEntries(200);
    const io = newFolder();
    appendPositionEntries(io, PATH, 0, entries);
    const cache = new BlockCache(1 << 20);
    const index = PositionIndex.open(io, PATH, cache, entries.length, FILE);
    for (const entry of entries) expect(index.atPosition(entry.firstPosition)).toEqual(entry);
    const { misses, bytes } = cache.stats();
    expect(misses).toBe(4);
    // Every cached block counts as a whole block, the short last one too.
    expect(bytes).toBe(4 * 4096);
    expect(cache.stats().hits).toBeGreaterThan(200);
    index.close();
    expect(cache.stats().bytes).toBe(0);
    expect(() => index.entry(0)).toThrow(/closed/);
  });
});

describe('appendPositionEntries and encodePositionEntries', () => {
  it('appends at an entry index, cuts a leftover tail, refuses a gap, and makes a new file durable', () => {
    const entries = evenEntries(10);
    const io = newFolder();
    appendPositionEntries(io, PATH, 0, entries.slice(0, 6));
    expect(io.crash().fileContent(PATH)).toEqual(encodePositionEntries(entries.slice(0, 6)));
    appendPositionEntries(io, PATH, 4, entries.slice(4, 5));
    expect(io.fileContent(PATH)).toEqual(encodePositionEntries(entries.slice(0, 5)));
    appendPositionEntries(io, PATH, 5, entries.slice(5));
    expect(io.crash().fileContent(PATH)).toEqual(encodePositionEntries(entries));
    expect(() => appendPositionEntries(io, PATH, 11, entries.slice(0, 1))).toThrow(RangeError);
  });

  it('refuses entries that do not follow one another or do not fit a u53', () => {
    const [a, b] = evenEntries(2) as [PositionEntry, PositionEntry];
    expect(() => encodePositionEntries([b, a])).toThrow(/firstPosition/);
    expect(() => encodePositionEntries([a, { ...b, indexOffset: a.indexOffset }])).toThrow(/indexOffset/);
    expect(() => encodePositionEntries([a, { ...b, generation: a.generation - 1 }])).toThrow(/generation/);
    expect(() => encodePositionEntries([a, { ...b, timestamp: a.timestamp - 1 }])).toThrow(/timestamp/);
    expect(() => encodePositionEntries([{ ...a, timestamp: -1 }])).toThrow(RangeError);
    expect(() => encodePositionEntries([{ ...a, generation: 2 ** 53 }])).toThrow(RangeError);
    expect(
      encodePositionEntries([a, { ...b, generation: a.generation, timestamp: a.timestamp }]).byteLength,
    ).toBe(128);
  });
});
