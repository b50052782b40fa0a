import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BlockCache } from '../../src/storage/block-cache.js';
import { FaultInjectingFileIO } from '../../src/storage/fault-io.js';
import { InstanceBloom, writeBloom } from '../../src/storage/instance-bloom.js';

const SEED = Number(process.env.RINGSTORE_SEED ?? 4099);
const PATH = '/d/instances-1.bloom';

function folder(): FaultInjectingFileIO {
  const io = new FaultInjectingFileIO();
  io.mkdir('/d');
  return io;
}

describe(`InstanceBloom (seed ${SEED}; set RINGSTORE_SEED to change)`, () => {
  it('admits every instance written to it and few others (about 1 % false positives)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(
          fc.tuple(fc.integer({ min: 0, max: 3 }), fc.bigInt({ min: 1n, max: 2n ** 64n - 1n })),
          {
            minLength: 1,
            maxLength: 3000,
            selector: ([code, id]) => `${code}:${id}`,
          },
        ),
        (keys) => {
          const io = folder();
          const entries = keys.map(([aggregateTypeCode, aggregateId]) => ({
            aggregateTypeCode,
            aggregateId,
          }));
          writeBloom(io, PATH, entries, entries.length);
          const bloom = InstanceBloom.open(io, PATH, new BlockCache(1 << 20), 'd/instances-1.bloom')!;
          for (const { aggregateTypeCode, aggregateId } of entries) {
            expect(bloom.mayContain(aggregateTypeCode, aggregateId)).toBe(true);
          }
          const present = new Set(keys.map(([code, id]) => `${code}:${id}`));
          let positives = 0;
          let probes = 0;
          for (let id = 1n; probes < 2000; id += 7919n) {
            if (present.has(`9:${id}`)) continue;
            probes++;
            if (bloom.mayContain(9, id)) positives++;
          }
          expect(positives / probes).toBeLessThan(0.05);
          expect(bloom.firstDamagedBlock()).toBe(-1);
          bloom.close();
        },
      ),
      { seed: SEED, numRuns: 30 },
    );
  });

  it('a damaged block admits everything it covers (the run is read) and is reported by offset', () => {
    const io = folder();
    const entries = Array.from({ length: 5000 }, (_, i) => ({
      aggregateTypeCode: 0,
      aggregateId: BigInt(i + 1),
    }));
    writeBloom(io, PATH, entries, entries.length);
    const bytes = io.fileContent(PATH);
    bytes[4096 + 10]! ^= 0x40;
    io.setFileContent(PATH, bytes);
    const bloom = InstanceBloom.open(io, PATH, new BlockCache(1 << 20), 'd/instances-1.bloom')!;
    expect(bloom.firstDamagedBlock()).toBe(4096);
    for (const { aggregateId } of entries) expect(bloom.mayContain(0, aggregateId)).toBe(true);
    bloom.close();
  });

  it('a missing file or one that is not whole blocks is no filter at all', () => {
    const io = folder();
    expect(InstanceBloom.open(io, PATH, new BlockCache(0), 'x')).toBeUndefined();
    const fd = io.open(PATH, 'create');
    io.write(fd, new Uint8Array(100), 0);
    io.close(fd);
    expect(InstanceBloom.open(io, PATH, new BlockCache(0), 'x')).toBeUndefined();
  });
});
