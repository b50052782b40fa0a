import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BlockCache, CACHE_BLOCK_BYTES } from '../../src/storage/block-cache.js';
import { FaultInjectingFileIO } from '../../src/storage/fault-io.js';
import { mulberry32 } from '../support/prng.js';

const SEED = Number(process.env.RINGSTORE_SEED ?? 4_097);

/** Three files: empty, one and a bit blocks, nine and a bit blocks; their content and descriptors. */
function threeFiles(): { io: FaultInjectingFileIO; fds: number[]; contents: Uint8Array[] } {
  const io = new FaultInjectingFileIO();
  io.mkdir('/c');
  const random = mulberry32(SEED);
  const contents = [0, CACHE_BLOCK_BYTES + 904, 9 * CACHE_BLOCK_BYTES + 100].map((size) =>
    Uint8Array.from({ length: size }, () => Math.floor(random() * 256)),
  );
  const fds = contents.map((content, i) => {
    const fd = io.open(`/c/f${i}`, 'create');
    io.write(fd, content, 0);
    return fd;
  });
  return { io, fds, contents };
}

/** Byte equality without the cost of a deep equality over every element. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

function expectedBlock(content: Uint8Array, blockNo: number): Uint8Array {
  const from = Math.min(content.byteLength, blockNo * CACHE_BLOCK_BYTES);
  return content.subarray(from, Math.min(content.byteLength, from + CACHE_BLOCK_BYTES));
}

describe(`BlockCache (seed ${SEED})`, () => {
  it('reads blocks, short at the end of a file and empty past it, and serves repeats from memory', () => {
    const { io, fds, contents } = threeFiles();
    const cache = new BlockCache(8 * CACHE_BLOCK_BYTES);
    const key = cache.newFileKey();
    const first = cache.block(key, io, fds[1]!, 0);
    expect(first).toEqual(expectedBlock(contents[1]!, 0));
    const short = cache.block(key, io, fds[1]!, 1);
    expect(short.byteLength).toBe(904);
    expect(short).toEqual(expectedBlock(contents[1]!, 1));
    expect(cache.block(key, io, fds[1]!, 2).byteLength).toBe(0);
    expect(cache.block(key, io, fds[1]!, 0)).toBe(first);
    expect(cache.stats()).toEqual({
      capacityBytes: 8 * CACHE_BLOCK_BYTES,
      bytes: 3 * CACHE_BLOCK_BYTES,
      hits: 1,
      misses: 3,
    });
  });

  it('runs check once per read from disk and does not keep a refused block', () => {
    const { io, fds, contents } = threeFiles();
    const cache = new BlockCache(4 * CACHE_BLOCK_BYTES);
    const key = cache.newFileKey();
    const checked: number[] = [];
    const refuse = (_block: Uint8Array, blockNo: number) => {
      checked.push(blockNo);
      throw new Error(`refused ${blockNo}`);
    };
    expect(() => cache.block(key, io, fds[2]!, 3, refuse)).toThrow('refused 3');
    expect(() => cache.block(key, io, fds[2]!, 3, refuse)).toThrow('refused 3');
    expect(cache.stats()).toMatchObject({ bytes: 0, hits: 0, misses: 2 });
    const accept = (block: Uint8Array, blockNo: number) => {
      checked.push(blockNo);
      expect(block).toEqual(expectedBlock(contents[2]!, blockNo));
    };
    cache.block(key, io, fds[2]!, 3, accept);
    cache.block(key, io, fds[2]!, 3, accept);
    expect(checked).toEqual([3, 3, 3]);
    expect(cache.stats()).toMatchObject({ bytes: CACHE_BLOCK_BYTES, hits: 1, misses: 3 });
  });

  it('caches nothing below one block of capacity, and forgets a dropped file', () => {
    const { io, fds } = threeFiles();
    for (const capacity of [0, CACHE_BLOCK_BYTES - 1]) {
      const cache = new BlockCache(capacity);
      const key = cache.newFileKey();
      cache.block(key, io, fds[2]!, 0);
      cache.block(key, io, fds[2]!, 0);
      expect(cache.stats()).toEqual({ capacityBytes: capacity, bytes: 0, hits: 0, misses: 2 });
    }
    const cache = new BlockCache(10 * CACHE_BLOCK_BYTES);
    const [a, b] = [cache.newFileKey(), cache.newFileKey()];
    expect(a).not.toBe(b);
    for (let n = 0; n < 3; n++) {
      cache.block(a, io, fds[2]!, n);
      cache.block(b, io, fds[1]!, n);
    }
    cache.dropFile(a);
    cache.dropFile(a);
    expect(cache.stats().bytes).toBe(3 * CACHE_BLOCK_BYTES);
    cache.block(a, io, fds[2]!, 0);
    cache.block(b, io, fds[1]!, 0);
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 7 });
    expect(() => new BlockCache(-1)).toThrow(RangeError);
    expect(() => new BlockCache(1.5)).toThrow(RangeError);
  });

  it('property: equals a least-recently-used model, within its byte bound, counting hits and misses', () => {
    const { io, fds, contents } = threeFiles();
    const access = fc.record({
      kind: fc.constant('block' as const),
      file: fc.integer({ min: 0, max: 2 }),
      blockNo: fc.integer({ min: 0, max: 11 }),
    });
    const drop = fc.record({ kind: fc.constant('drop' as const), file: fc.integer({ min: 0, max: 2 }) });
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 7 * CACHE_BLOCK_BYTES + 100 }),
        fc.array(fc.oneof({ arbitrary: access, weight: 8 }, { arbitrary: drop, weight: 1 }), {
          maxLength: 120,
          size: 'max',
        }),
        // The steps whose read from disk the check refuses.
        fc.array(fc.integer({ min: 0, max: 119 }), { maxLength: 10, size: 'max' }),
        (capacity, commands, refusals) => {
          const cache = new BlockCache(capacity);
          const keys = [cache.newFileKey(), cache.newFileKey(), cache.newFileKey()];
          const capacityBlocks = Math.floor(capacity / CACHE_BLOCK_BYTES);
          let lru: string[] = [];
          let hits = 0;
          let misses = 0;
          let checks = 0;
          // What happened and what the model says, step by step, compared once at the end.
          const actual: string[] = [];
          const expected: string[] = [];
          commands.forEach((command, step) => {
            if (command.kind === 'drop') {
              cache.dropFile(keys[command.file]!);
              lru = lru.filter((name) => !name.startsWith(`${command.file}:`));
            } else {
              const name = `${command.file}:${command.blockNo}`;
              const refused = refusals.includes(step);
              const check = () => {
                checks++;
                if (refused) throw new Error('refused');
              };
              let outcome: string;
              try {
                const block = cache.block(
                  keys[command.file]!,
                  io,
                  fds[command.file]!,
                  command.blockNo,
                  check,
                );
                outcome = sameBytes(block, expectedBlock(contents[command.file]!, command.blockNo))
                  ? 'bytes'
                  : 'wrong bytes';
              } catch (err) {
                outcome = (err as Error).message;
              }
              actual.push(outcome);
              const at = lru.indexOf(name);
              if (at >= 0) {
                hits++;
                lru.splice(at, 1);
                lru.push(name);
                expected.push('bytes');
              } else {
                misses++;
                expected.push(refused ? 'refused' : 'bytes');
                if (!refused) {
                  lru.push(name);
                  if (lru.length > capacityBlocks) lru.shift();
                }
              }
            }
            const stats = cache.stats();
            if (stats.bytes > capacity) actual.push('over capacity');
            actual.push(`${stats.capacityBytes} ${stats.bytes} ${stats.hits} ${stats.misses} ${checks}`);
            expected.push(`${capacity} ${lru.length * CACHE_BLOCK_BYTES} ${hits} ${misses} ${misses}`);
          });
          expect(actual).toEqual(expected);
        },
      ),
      { seed: SEED, numRuns: 100 },
    );
  });
});
