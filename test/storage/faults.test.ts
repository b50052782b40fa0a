import { describe, expect, it } from 'vitest';
import { hasCode } from '../../src/errors.js';
import { crc32 } from '../../src/model/crc.js';
import { EMPTY_BYTES } from '../../src/model/events.js';
import {
  type CrashChoice,
  crashChoice,
  FaultInjectingFileIO,
  type FaultKind,
  PAGE_BYTES,
} from '../../src/storage/fault-io.js';
import { StorageEngine } from '../../src/storage/storage-engine.js';
import type { AppendBatch } from '../../src/storage/types.js';
import { StorageWriter } from '../../src/storage/writer.js';
import { mulberry32 } from '../support/prng.js';

const enc = new TextEncoder();

function batch(domain: string, id: bigint, text: string): AppendBatch {
  const data = enc.encode(text);
  return {
    domain,
    aggregateType: 'a',
    aggregateId: id,
    expectedVersion: 'any',
    idempotencyKey: undefined,
    events: [{ type: 'E', data, metadata: EMPTY_BYTES, crc: crc32(data) }],
  };
}

function expectStoreFailed(fn: () => unknown): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(hasCode(thrown, 'STORE_FAILED'), String(thrown)).toBe(true);
}

function choice(size: 'synced' | 'current', page: (index: number) => boolean): CrashChoice {
  return { size: () => size, page: (_path, index) => page(index) };
}

/**
 * A file of 2.5 synced pages (bytes 1) whose current image overwrote 2 bytes of page 1 and bytes
 * of page 2 in place, and appended up to 3.5 pages (bytes 9 past the synced end).
 */
function fourPages(): { io: FaultInjectingFileIO; synced: Uint8Array; current: Uint8Array } {
  const io = new FaultInjectingFileIO();
  const fd = io.open('/f', 'create');
  io.fsyncDir('/');
  const synced = new Uint8Array(2.5 * PAGE_BYTES).fill(1);
  io.write(fd, synced, 0);
  io.fdatasync(fd);
  io.write(fd, new Uint8Array([7, 7]), PAGE_BYTES + 10);
  io.write(fd, new Uint8Array(1.5 * PAGE_BYTES).fill(9), 2 * PAGE_BYTES);
  return { io, synced, current: io.fileContent('/f') };
}

describe('FaultInjectingFileIO', () => {
  it('keeps only fsynced bytes and fsyncDir-ed entries across a crash without a choice', () => {
    const io = new FaultInjectingFileIO();
    io.mkdir('/d');
    io.fsyncDir('/');
    const fd = io.open('/d/f', 'create');
    io.write(fd, enc.encode('durable'), 0);
    io.fsync(fd);
    io.fsyncDir('/d');
    io.write(fd, enc.encode('-lost'), 7);
    const lost = io.open('/d/g', 'create');
    io.write(lost, enc.encode('x'), 0);
    io.fsync(lost);
    expect(new TextDecoder().decode(io.crash().fileContent('/d/f'))).toBe('durable');
    expect(io.crash().listFiles('/')).toEqual(['/d/f']);
    expect(new TextDecoder().decode(io.crash(choice('current', () => true)).fileContent('/d/f'))).toBe(
      'durable-lost',
    );
  });

  it('keeps or drops each changed page independently, and asks only about changed pages', () => {
    const { io, synced, current } = fourPages();
    const asked: number[] = [];
    const kept = io.crash(
      choice('current', (page) => {
        asked.push(page);
        return page === 2;
      }),
    );
    // Page 0 is unchanged; 1 and 3 were overwritten in place, 2 and 3 partly appended.
    expect(asked).toEqual([1, 2, 3]);
    const expected = Uint8Array.from(synced);
    const grown = new Uint8Array(current.byteLength);
    grown.set(expected);
    grown.set(current.subarray(2 * PAGE_BYTES, 3 * PAGE_BYTES), 2 * PAGE_BYTES);
    expect(kept.fileContent('/f')).toEqual(grown);
  });

  it('leaves stale synced bytes in an overwritten page that was not persisted', () => {
    const { io, synced, current } = fourPages();
    const image = io.crash(choice('synced', (page) => page === 2)).fileContent('/f');
    expect(image.byteLength).toBe(synced.byteLength);
    // Page 1 (overwritten, not persisted) still holds the old bytes; page 2 the new ones up to Ls.
    expect(current.subarray(PAGE_BYTES + 10, PAGE_BYTES + 12)).toEqual(new Uint8Array([7, 7]));
    expect(image.subarray(PAGE_BYTES, 2 * PAGE_BYTES)).toEqual(synced.subarray(PAGE_BYTES, 2 * PAGE_BYTES));
    expect(image.subarray(2 * PAGE_BYTES)).toEqual(current.subarray(2 * PAGE_BYTES, synced.byteLength));
    expect(image[2 * PAGE_BYTES + 100]).toBe(9);
  });

  it('can keep a new size without its bytes: zeros past the synced size', () => {
    const { io, synced, current } = fourPages();
    const image = io.crash(choice('current', () => false)).fileContent('/f');
    expect(image.byteLength).toBe(current.byteLength);
    expect(image.subarray(0, synced.byteLength)).toEqual(synced);
    expect(image.subarray(synced.byteLength).every((b) => b === 0)).toBe(true);
  });

  it('keeps bytes of a persisted page only up to the surviving size', () => {
    const { io, synced, current } = fourPages();
    const image = io.crash(choice('synced', () => true)).fileContent('/f');
    expect(image).toEqual(current.subarray(0, synced.byteLength));
  });

  it('builds seeded choices: none, all, random (replayable) and torn', () => {
    const { io, synced, current } = fourPages();
    expect(io.crash(crashChoice('none', mulberry32(1))).fileContent('/f')).toEqual(synced);
    expect(io.crash(crashChoice('all', mulberry32(1))).fileContent('/f')).toEqual(current);
    const a = io.crash(crashChoice('random', mulberry32(5))).fileContent('/f');
    const b = io.crash(crashChoice('random', mulberry32(5))).fileContent('/f');
    expect(a).toEqual(b);
    const torn = io.crash(crashChoice('torn', mulberry32(1))).fileContent('/f');
    // The first changed page (1) is lost, every later one kept, and the new size kept.
    expect(torn.byteLength).toBe(current.byteLength);
    expect(torn.subarray(PAGE_BYTES, 2 * PAGE_BYTES)).toEqual(synced.subarray(PAGE_BYTES, 2 * PAGE_BYTES));
    expect(torn.subarray(2 * PAGE_BYTES)).toEqual(current.subarray(2 * PAGE_BYTES));
    // Across many seeds a random choice hits every combination of the 3 changed pages.
    const seen = new Set<string>();
    for (let seed = 1; seed <= 200; seed++) {
      const image = io.crash(crashChoice('random', mulberry32(seed))).fileContent('/f');
      seen.add(
        [1, 2, 3]
          .map((page) => (image[page * PAGE_BYTES + 10] === current[page * PAGE_BYTES + 10] ? 1 : 0))
          .join(''),
      );
    }
    expect(seen.size).toBe(8);
  });

  it('keeps the durable bytes of a file truncated without fsync', () => {
    const io = new FaultInjectingFileIO();
    io.fsyncDir('/');
    const fd = io.open('/f', 'create');
    io.fsyncDir('/');
    io.write(fd, enc.encode('abcdef'), 0);
    io.fdatasync(fd);
    io.truncate(fd, 2);
    io.write(fd, enc.encode('XY'), 2);
    expect(new TextDecoder().decode(io.fileContent('/f'))).toBe('abXY');
    expect(new TextDecoder().decode(io.crash().fileContent('/f'))).toBe('abcdef');
  });

  it.each<FaultKind>(['write', 'fsync', 'open', 'rename'])('fails the n-th %s operation with EIO', (kind) => {
    const io = new FaultInjectingFileIO();
    io.failNth(kind, 2);
    const fd = io.open('/a', 'create');
    if (kind === 'rename') {
      io.rename('/a', '/b');
      expect(() => io.rename('/b', '/a')).toThrow(/EIO/);
      io.rename('/b', '/a');
      return;
    }
    const act = () => {
      if (kind === 'write') io.write(fd, enc.encode('x'), 0);
      else if (kind === 'fsync') io.fsync(fd);
      else io.close(io.open('/a', 'read'));
    };
    if (kind === 'write' || kind === 'fsync') act();
    expect(() => act()).toThrow(/EIO/);
    act();
  });

  it('freezes everything after a power loss', () => {
    const io = new FaultInjectingFileIO();
    io.powerLossAfter(2);
    const fd = io.open('/a', 'create');
    io.write(fd, enc.encode('x'), 0);
    expect(() => io.fsync(fd)).toThrow(/EIO/);
    expect(() => io.write(fd, enc.encode('y'), 1)).toThrow(/EIO/);
    expect(io.poweredOff).toBe(true);
  });
});

describe('write and fsync failures fail the writer for good', () => {
  it.each<FaultKind>(['fsync', 'write', 'open'])(
    'an injected %s failure → STORE_FAILED, later appends refused',
    (kind) => {
      const io = new FaultInjectingFileIO();
      const writer = StorageWriter.open('/s', { io });
      writer.append([batch('d', 1n, 'one')], 'fsync');
      if (kind === 'open') {
        io.failNth('open', 1);
        expectStoreFailed(() => writer.append([batch('other', 1n, 'new domain')], 'fsync'));
      } else {
        io.failNth(kind, 1);
        expectStoreFailed(() => writer.append([batch('d', 1n, 'two')], 'fsync'));
      }
      expect(writer.failed).toBe(true);
      const opsAfterFailure = io.operations;
      expectStoreFailed(() => writer.append([batch('d', 2n, 'three')], 'fsync'));
      expectStoreFailed(() => writer.append([batch('d', 2n, 'four')], 'none'));
      // Refused without touching a file: in particular the failed fsync is never retried.
      expect(io.operations).toBe(opsAfterFailure);
      writer.close();

      const reopened = StorageWriter.open('/s', { io: io.crash() });
      expect(reopened.version('d', 'a', 1n)).toBeLessThanOrEqual(2);
      expect(reopened.version('d', 'a', 2n)).toBe(0);
      reopened.close();
    },
  );

  it('the engine rejects the pending puts and every later put, and keeps serving reads', async () => {
    const io = new FaultInjectingFileIO();
    const store = StorageEngine.open('/s', { io });
    await store.put('d', 'a', 1n, [{ type: 'E', data: 'acked' }]);
    io.failNth('fsync', 1);
    const pending = await Promise.allSettled([
      store.put('d', 'a', 1n, [{ type: 'E', data: 'x' }]),
      store.put('d', 'a', 2n, [{ type: 'E', data: 'y' }]),
    ]);
    expect(pending.map((p) => p.status)).toEqual(['rejected', 'rejected']);
    for (const p of pending) expect(hasCode((p as PromiseRejectedResult).reason, 'STORE_FAILED')).toBe(true);
    await expect(store.put('d', 'a', 3n, [{ type: 'E' }])).rejects.toMatchObject({ code: 'STORE_FAILED' });
    expect(store.failed).toBe(true);
    // Only the acknowledged event is visible to readers.
    expect((await store.read('d')).events.map((e) => new TextDecoder().decode(e.data))).toEqual(['acked']);
    await store.close();
    const after = StorageEngine.open('/s', { io: io.crash() });
    const survivors = (await after.read('d')).events;
    expect(survivors[0]!.data).toEqual(enc.encode('acked'));
    await after.close();
  });
});
