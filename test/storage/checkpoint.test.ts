import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32 } from '../../src/model/crc.js';
import {
  CHECKPOINT_FILE,
  CHECKPOINT_TMP_FILE,
  type Checkpoint,
  decodeCheckpoint,
  encodeCheckpoint,
  readCheckpoint,
  writeCheckpoint,
} from '../../src/storage/checkpoint.js';
import { CRASH_MODES, crashChoice, FaultInjectingFileIO } from '../../src/storage/fault-io.js';
import { mulberry32 } from '../support/prng.js';

const SEED = Number(process.env.RINGSTORE_SEED ?? 7_272);
const FOLDER = '/d';

const u53 = fc.oneof(fc.integer({ min: 0, max: 5_000 }), fc.maxSafeNat());

/** Valid checkpoints: runs in increasing indexTo within indexEnd, distinct ids below nextRunId. */
const checkpointArb: fc.Arbitrary<Checkpoint> = fc
  .record({
    sequence: fc.oneof(
      fc.integer({ min: 1, max: 100 }),
      fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    ),
    registryEnd: u53,
    nextPosition: u53,
    lastGeneration: u53,
    lastTimestamp: u53,
    positionEntries: u53,
    runs: fc.uniqueArray(
      fc.record({
        runId: fc.integer({ min: 0, max: 0xffff_fff0 }),
        entryCount: u53,
        indexStep: fc.integer({ min: 1, max: 2 ** 40 }),
      }),
      { selector: (run) => run.runId, maxLength: 12 },
    ),
    indexSlack: fc.integer({ min: 0, max: 2 ** 40 }),
    runIdSlack: fc.integer({ min: 1, max: 10 }),
    dataEnds: fc.uniqueArray(
      fc.record({
        aggregateTypeCode: fc.integer({ min: 0, max: 0xffff }),
        segment: fc.integer({ min: 0, max: 0xffff_ffff }),
        end: u53,
      }),
      { selector: (dataEnd) => dataEnd.aggregateTypeCode, maxLength: 8 },
    ),
  })
  .map(({ runs, indexSlack, runIdSlack, ...rest }) => {
    let indexTo = 0;
    const listed = runs.map(({ runId, entryCount, indexStep }) => {
      indexTo += indexStep;
      return { runId, entryCount, indexTo };
    });
    return {
      ...rest,
      indexEnd: indexTo + indexSlack,
      nextRunId: Math.max(-1, ...runs.map((run) => run.runId)) + runIdSlack,
      runs: listed,
    };
  });

function sample(count: number, seed: number): Checkpoint[] {
  return fc.sample(checkpointArb, { numRuns: count, seed });
}

/** A checkpoint with `runCount` runs, so its record can span more than one 4096-byte page. */
function checkpointWith(sequence: number, runCount: number): Checkpoint {
  return {
    sequence,
    registryEnd: 100 * sequence,
    indexEnd: 10_000 * sequence + runCount,
    nextPosition: 7 * sequence,
    lastGeneration: sequence,
    lastTimestamp: 1_700_000_000_000 + sequence,
    positionEntries: 2 * sequence,
    nextRunId: runCount + sequence,
    runs: Array.from({ length: runCount }, (_, i) => ({
      runId: i + sequence - 1,
      entryCount: i + 1,
      indexTo: i + 1,
    })),
    dataEnds: [
      { aggregateTypeCode: 1, segment: sequence, end: 4_096 * sequence },
      { aggregateTypeCode: 3, segment: 0, end: 16 },
    ],
  };
}

/** Recomputes the trailing CRC, so a test reaches the checks behind it. */
function withCrc(bytes: Uint8Array): Uint8Array {
  const end = bytes.byteLength - 4;
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(end, crc32(bytes.subarray(0, end)), true);
  return bytes;
}

function newFolder(): FaultInjectingFileIO {
  const io = new FaultInjectingFileIO();
  io.mkdir(FOLDER);
  io.fsyncDir('/');
  return io;
}

describe(`checkpoint codec (seed ${SEED}; set RINGSTORE_SEED to change)`, () => {
  it('property: decode(encode(c)) is c', () => {
    fc.assert(
      fc.property(checkpointArb, (c) => {
        expect(decodeCheckpoint(encodeCheckpoint(c))).toEqual(c);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('every single-byte flip, truncation and extension decodes to a reason string', () => {
    const random = mulberry32(SEED);
    const failures: string[] = [];
    for (const [n, c] of [...sample(20, SEED + 1), checkpointWith(3, 2)].entries()) {
      const bytes = encodeCheckpoint(c);
      const damaged = Uint8Array.from(bytes);
      for (let at = 0; at < bytes.byteLength; at++) {
        for (const mask of [0xff, 1 << Math.floor(random() * 8), 1 + Math.floor(random() * 255)]) {
          damaged[at]! ^= mask;
          const decoded = decodeCheckpoint(damaged);
          if (typeof decoded !== 'string') failures.push(`checkpoint ${n}: byte ${at} ^ ${mask}`);
          damaged[at]! ^= mask;
        }
      }
      for (let length = 0; length < bytes.byteLength; length++) {
        if (typeof decodeCheckpoint(bytes.subarray(0, length)) !== 'string') {
          failures.push(`checkpoint ${n}: truncated to ${length}`);
        }
      }
      for (const extra of [1, 4, 24]) {
        const longer = new Uint8Array(bytes.byteLength + extra);
        longer.set(bytes);
        if (typeof decodeCheckpoint(longer) !== 'string')
          failures.push(`checkpoint ${n}: ${extra} bytes more`);
      }
    }
    expect(failures, `seed ${SEED}`).toEqual([]);
  });

  it('property: arbitrary bytes never throw, and whatever decodes is the canonical encoding', () => {
    const fixUp = (body: Uint8Array, runCount: number, dataEndCount: number): Uint8Array => {
      const length = 72 + runCount * 24 + dataEndCount * 16 + 4;
      const bytes = new Uint8Array(length);
      bytes.set(body.subarray(0, length));
      const view = new DataView(bytes.buffer);
      view.setUint32(0, length, true);
      view.setUint32(4, 0x02435352, true);
      view.setUint16(68, runCount, true);
      view.setUint16(70, dataEndCount, true);
      return withCrc(bytes);
    };
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          fc
            .tuple(fc.uint8Array({ minLength: 400, maxLength: 400 }), fc.nat(4), fc.nat(4))
            .map(([body, runs, ends]) => fixUp(body, runs, ends)),
          fc.tuple(checkpointArb, fc.nat(), fc.nat(255)).map(([c, at, value]) => {
            const bytes = encodeCheckpoint(c);
            bytes[8 + (at % (bytes.byteLength - 12))] = value;
            return withCrc(bytes);
          }),
        ),
        (bytes) => {
          const decoded = decodeCheckpoint(bytes);
          if (typeof decoded !== 'string') expect(encodeCheckpoint(decoded)).toEqual(bytes);
        },
      ),
      { seed: SEED + 2, numRuns: 1_000 },
    );
  });

  it('gives a reason for each broken rule behind a good CRC', () => {
    const base = checkpointWith(2, 3);
    const encoded = () => encodeCheckpoint(base);
    const cases: [RegExp, (bytes: Uint8Array, view: DataView) => void][] = [
      [/magic/, (_, view) => view.setUint32(4, 0x01435352, true)],
      [/does not fit/, (_, view) => view.setUint16(68, 2, true)],
      [/sequence is 0/, (_, view) => view.setUint32(8, 0, true)],
      [/registryEnd is not a u53/, (bytes) => (bytes[16 + 7] = 0x01)],
      [/run 1: reserved/, (bytes) => (bytes[72 + 24 + 4] = 1)],
      [/data end 0: reserved/, (bytes) => (bytes[72 + 3 * 24 + 2] = 1)],
      [/run 1: indexTo does not increase/, (_, view) => view.setUint32(72 + 24 + 16, 1, true)],
      [/run 2: indexTo 30000 is past indexEnd/, (_, view) => view.setUint32(72 + 48 + 16, 30_000, true)],
      [/run 0: runId 5 is not below nextRunId 5/, (_, view) => view.setUint32(72, 5, true)],
      [/run 1: runId 1 is listed twice/, (_, view) => view.setUint32(72 + 24, 1, true)],
      [
        /data end 1: aggregate type 1 is listed twice/,
        (_, view) => view.setUint16(72 + 3 * 24 + 16, 1, true),
      ],
    ];
    for (const [reason, damage] of cases) {
      const bytes = encoded();
      damage(bytes, new DataView(bytes.buffer));
      const decoded = decodeCheckpoint(withCrc(bytes));
      expect(typeof decoded, String(reason)).toBe('string');
      expect(decoded).toMatch(reason);
    }
    expect(decodeCheckpoint(new Uint8Array(76))).toMatch(/length/);
    expect(decodeCheckpoint(encoded().subarray(1))).toMatch(/length/);
    const badCrc = encoded();
    badCrc[20]! ^= 1;
    expect(decodeCheckpoint(badCrc)).toBe('checkpoint crc mismatch');
  });

  it('refuses to encode a checkpoint that would not read back', () => {
    const base = checkpointWith(2, 3);
    const invalid: Checkpoint[] = [
      { ...base, sequence: 0 },
      { ...base, indexEnd: -1 },
      { ...base, lastTimestamp: 2 ** 53 },
      { ...base, registryEnd: 1.5 },
      { ...base, nextRunId: 2 ** 32 },
      { ...base, nextRunId: 2 },
      { ...base, runs: [...base.runs].reverse() },
      { ...base, runs: base.runs.map((run) => ({ ...run, indexTo: run.indexTo + base.indexEnd })) },
      { ...base, dataEnds: [...base.dataEnds, { aggregateTypeCode: 1, segment: 0, end: 0 }] },
      { ...base, dataEnds: [{ aggregateTypeCode: 0x1_0000, segment: 0, end: 0 }] },
      { ...base, dataEnds: [{ aggregateTypeCode: 0, segment: -1, end: 0 }] },
    ];
    for (const c of invalid) expect(() => encodeCheckpoint(c), JSON.stringify(c)).toThrow(RangeError);
  });
});

describe(`readCheckpoint and writeCheckpoint (seed ${SEED}; set RINGSTORE_SEED to change)`, () => {
  it('reads nothing, then what was written, then a reason for a damaged file', () => {
    const io = newFolder();
    expect(readCheckpoint(io, FOLDER)).toBeUndefined();
    writeCheckpoint(io, FOLDER, checkpointWith(1, 2));
    expect(readCheckpoint(io, FOLDER)).toEqual(checkpointWith(1, 2));
    writeCheckpoint(io, FOLDER, checkpointWith(2, 0));
    expect(readCheckpoint(io, FOLDER)).toEqual(checkpointWith(2, 0));
    expect(io.listFiles(FOLDER)).toEqual([`${FOLDER}/${CHECKPOINT_FILE}`]);
    io.setFileContent(`${FOLDER}/${CHECKPOINT_FILE}`, new Uint8Array(10));
    expect(readCheckpoint(io, FOLDER)).toMatch(/too short/);
  });

  /**
   * Power loss after every operation of a writeCheckpoint, from several starting states, with every
   * crash mode: the surviving checkpoint is the old one (none when there was none) or the new one,
   * the new one once the call returned, and a later write over the image works.
   */
  it('a power loss at any step leaves the old or the new checkpoint, never a damaged one or none', () => {
    const random = mulberry32(SEED);
    const setups: {
      name: string;
      old: Checkpoint | undefined;
      next: Checkpoint;
      prepare: (io: FaultInjectingFileIO) => void;
    }[] = [
      { name: 'first checkpoint', old: undefined, next: checkpointWith(1, 2), prepare: () => {} },
      {
        name: 'replace',
        old: checkpointWith(1, 2),
        next: checkpointWith(2, 3),
        prepare: (io) => writeCheckpoint(io, FOLDER, checkpointWith(1, 2)),
      },
      {
        name: 'replace multi-page records',
        old: checkpointWith(1, 400),
        next: checkpointWith(2, 300),
        prepare: (io) => writeCheckpoint(io, FOLDER, checkpointWith(1, 400)),
      },
      {
        name: 'replace with a longer synced leftover checkpoint.tmp',
        old: checkpointWith(1, 2),
        next: checkpointWith(2, 1),
        prepare: (io) => {
          writeCheckpoint(io, FOLDER, checkpointWith(1, 2));
          leftoverAside(io, encodeCheckpoint(checkpointWith(9, 500)), true);
        },
      },
      {
        name: 'first checkpoint with an unsynced leftover checkpoint.tmp',
        old: undefined,
        next: checkpointWith(1, 0),
        prepare: (io) => leftoverAside(io, encodeCheckpoint(checkpointWith(9, 200)), false),
      },
    ];
    let images = 0;
    for (const setup of setups) {
      const reference = newFolder();
      setup.prepare(reference);
      const before = reference.operations;
      writeCheckpoint(reference, FOLDER, setup.next);
      const steps = reference.operations - before;
      expect(steps).toBeGreaterThanOrEqual(7);
      for (let k = 0; k <= steps; k++) {
        const io = newFolder();
        setup.prepare(io);
        io.powerLossAfter(k);
        let returned = true;
        try {
          writeCheckpoint(io, FOLDER, setup.next);
        } catch {
          returned = false;
        }
        expect(returned, `${setup.name} k ${k}`).toBe(k === steps);
        for (const mode of CRASH_MODES) {
          for (let repeat = 0; repeat < (mode === 'random' ? 4 : 1); repeat++) {
            images++;
            const label = `seed ${SEED}, ${setup.name}, power loss after ${k} of ${steps} steps, mode ${mode}`;
            const image = io.crash(crashChoice(mode, random));
            const found = readCheckpoint(image, FOLDER);
            if (returned) expect(found, label).toEqual(setup.next);
            else expect([setup.old, setup.next], label).toContainEqual(found);
            const later = { ...setup.next, sequence: setup.next.sequence + 1 };
            writeCheckpoint(image, FOLDER, later);
            expect(readCheckpoint(image.crash(), FOLDER), label).toEqual(later);
          }
        }
      }
    }
    expect(images).toBeGreaterThan(150);
  });
});

/** A `checkpoint.tmp` left by an earlier interrupted write: synced with its folder entry, or not at all. */
function leftoverAside(io: FaultInjectingFileIO, bytes: Uint8Array, synced: boolean): void {
  const fd = io.open(`${FOLDER}/${CHECKPOINT_TMP_FILE}`, 'create');
  io.write(fd, bytes, 0);
  if (synced) io.fdatasync(fd);
  io.close(fd);
  if (synced) io.fsyncDir(FOLDER);
}
