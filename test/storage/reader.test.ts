import { describe, expect, it } from 'vitest';
import { crc32 } from '../../src/model/crc.js';
import { EMPTY_BYTES } from '../../src/model/events.js';
import { validateGetOptions, validateReadOptions } from '../../src/model/queries.js';
import { FaultInjectingFileIO } from '../../src/storage/fault-io.js';
import { StorageReader } from '../../src/storage/reader.js';
import type { AppendBatch } from '../../src/storage/types.js';
import { StorageWriter } from '../../src/storage/writer.js';

/**
 * Counts the FileIO calls a reader makes on data segments (`<aggtype>.<n>`), to check it reads each
 * batch span once and caches fds. Reads of index files are not payload reads and are not counted.
 */
class CountingIO extends FaultInjectingFileIO {
  reads = 0;
  opens = 0;
  readonly #segmentFds = new Set<number>();
  override read(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number {
    if (this.#segmentFds.has(fd)) this.reads++;
    return super.read(fd, buffer, offset, length, position);
  }
  override open(path: string, mode: 'read' | 'readwrite' | 'create'): number {
    const fd = super.open(path, mode);
    if (/\/[a-z0-9][a-z0-9_-]*\.\d+$/.test(path)) {
      this.opens++;
      this.#segmentFds.add(fd);
    } else {
      this.#segmentFds.delete(fd);
    }
    return fd;
  }
}

function batch(
  id: bigint,
  count: number,
  type: string | ((i: number) => string) = 'E',
  size = 10,
): AppendBatch {
  return {
    domain: 'd',
    aggregateType: 'a',
    aggregateId: id,
    expectedVersion: 'any',
    idempotencyKey: undefined,
    events: Array.from({ length: count }, (_, i) => {
      const data = new Uint8Array(size).fill(i);
      return {
        type: typeof type === 'string' ? type : type(i),
        data,
        metadata: EMPTY_BYTES,
        crc: crc32(data),
      };
    }),
  };
}

/** Data of event i of a batch made by batch(): `size` bytes of value i. */
function expectedData(i: number, size: number): Uint8Array {
  return new Uint8Array(size).fill(i);
}

describe('StorageReader', () => {
  it('merges the spans of nearby batches into one positional read and keeps the data file open', () => {
    const io = new CountingIO();
    const writer = StorageWriter.open('/s', { io });
    writer.append([batch(1n, 10), batch(2n, 5), batch(1n, 10)], 'none');
    writer.close();
    const reader = StorageReader.open('/s', { io });
    io.reads = 0;
    io.opens = 0;
    const instance = reader.get('d', 'a', 1n, validateGetOptions({ fromVersion: 3, toVersion: 15 }));
    expect(instance.events.map((e) => e.version)).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    // Instance 1's two batches are 50 bytes apart in the segment: one read covers both.
    expect(io.reads).toBe(1);
    const log = reader.read('d', validateReadOptions({ fromPosition: 8, limit: 10 }));
    expect(log.events.map((e) => e.position)).toEqual([8, 9, 10, 11, 12, 13, 14, 15, 16, 17]);
    expect(log.nextPosition).toBe(18);
    expect(io.reads).toBe(2);
    expect(io.opens).toBe(1);
    reader.close();
  });

  it('answers unknown domains, types and instances with empty results', () => {
    const io = new FaultInjectingFileIO();
    const reader = StorageReader.open('/nothing-here', { io });
    expect(reader.read('d', validateReadOptions({ fromPosition: 7 }))).toEqual({
      events: [],
      nextPosition: 7,
    });
    expect(reader.get('d', 'a', 1n, validateGetOptions())).toEqual({ version: 0, events: [] });
    expect(reader.version('d', 'a', 1n)).toBe(0);
    expect(reader.domains()).toEqual([]);
    expect(reader.hasDomain('d')).toBe(false);
    reader.close();
  });

  it('filters by type without reading payloads of skipped events', () => {
    const io = new CountingIO();
    const writer = StorageWriter.open('/s', { io });
    writer.append([batch(1n, 3, 'A'), batch(2n, 3, 'B'), batch(3n, 3, 'A')], 'none');
    writer.close();
    const reader = StorageReader.open('/s', { io });
    io.reads = 0;
    const onlyB = reader.read('d', validateReadOptions({ types: ['B'] }));
    expect(onlyB.events.map((e) => [e.position, e.type])).toEqual([
      [3, 'B'],
      [4, 'B'],
      [5, 'B'],
    ]);
    expect(onlyB.nextPosition).toBe(9);
    expect(io.reads).toBe(1);
    reader.close();
  });

  it('reads spans farther apart than the merge gap (4 KiB) with separate reads', () => {
    for (const [size, reads] of [
      [4096, 1],
      [4097, 2],
    ] as const) {
      const io = new CountingIO();
      const writer = StorageWriter.open('/s', { io });
      writer.append([batch(1n, 1, 'E', 8), batch(2n, 1, 'E', size), batch(1n, 1, 'E', 8)], 'none');
      writer.close();
      const reader = StorageReader.open('/s', { io });
      io.reads = 0;
      const instance = reader.get('d', 'a', 1n, validateGetOptions({ verifyCrc: true }));
      expect(instance.events.map((e) => [e.version, e.data])).toEqual([
        [1, expectedData(0, 8)],
        [2, expectedData(0, 8)],
      ]);
      expect(io.reads).toBe(reads);
      reader.close();
    }
  });

  it('splits long runs into reads of at most 1 MiB', () => {
    const io = new CountingIO();
    const writer = StorageWriter.open('/s', { io });
    writer.append([batch(1n, 20, 'E', 60_000)], 'none');
    writer.close();
    const reader = StorageReader.open('/s', { io });
    io.reads = 0;
    const instance = reader.get('d', 'a', 1n, validateGetOptions({ verifyCrc: true }));
    expect(instance.events).toHaveLength(20);
    // Byte-wise toEqual on 1.2 MB is slow: compare each event's data with Buffer.equals.
    const wrong = instance.events.filter((e, i) => !Buffer.from(e.data).equals(expectedData(i, 60_000)));
    expect(wrong).toEqual([]);
    expect(io.reads).toBe(2);
    const log = reader.read('d', validateReadOptions({ verifyCrc: true }));
    expect(log.events.map((e) => e.data.length)).toEqual(new Array(20).fill(60_000));
    expect(io.reads).toBe(4);
    reader.close();
  });

  it('a type-filtered read keeps only the wanted bytes, each event its own data', () => {
    const io = new CountingIO();
    const writer = StorageWriter.open('/s', { io });
    const alternating = (i: number) => (i % 2 === 0 ? 'A' : 'B');
    writer.append([batch(1n, 6, alternating), batch(2n, 6, alternating)], 'none');
    writer.close();
    const reader = StorageReader.open('/s', { io });
    io.reads = 0;
    const onlyA = reader.read('d', validateReadOptions({ types: ['A'], verifyCrc: true }));
    expect(onlyA.events.map((e) => [e.position, e.version, e.data])).toEqual([
      [0, 1, expectedData(0, 10)],
      [2, 3, expectedData(2, 10)],
      [4, 5, expectedData(4, 10)],
      [6, 1, expectedData(0, 10)],
      [8, 3, expectedData(2, 10)],
      [10, 5, expectedData(4, 10)],
    ]);
    expect(io.reads).toBe(1);
    // The skipped events' bytes are not kept alive by the results.
    expect(onlyA.events[0]!.data.buffer.byteLength).toBe(60);
    reader.close();
  });

  it('returned data may be mutated without changing the store or other events', () => {
    const io = new CountingIO();
    const writer = StorageWriter.open('/s', { io });
    writer.append([batch(1n, 3), batch(1n, 3)], 'none');
    writer.close();
    const reader = StorageReader.open('/s', { io });
    const first = reader.get('d', 'a', 1n, validateGetOptions());
    first.events[1]!.data.fill(0xff);
    expect(first.events[0]!.data).toEqual(expectedData(0, 10));
    expect(first.events[2]!.data).toEqual(expectedData(2, 10));
    const again = reader.get('d', 'a', 1n, validateGetOptions({ verifyCrc: true }));
    expect(again.events.map((e) => e.data)).toEqual([0, 1, 2, 0, 1, 2].map((i) => expectedData(i, 10)));
    reader.close();
  });

  it('reads an instance whose batches lie in several segment files', () => {
    const io = new CountingIO();
    const writer = StorageWriter.open('/s', { io, segmentBytes: 64 });
    writer.append([batch(1n, 5), batch(2n, 5), batch(1n, 5), batch(1n, 5)], 'none');
    writer.close();
    const reader = StorageReader.open('/s', { io });
    io.reads = 0;
    io.opens = 0;
    const instance = reader.get('d', 'a', 1n, validateGetOptions({ fromVersion: 4, verifyCrc: true }));
    expect(instance.events.map((e) => [e.version, e.data[0]])).toEqual([
      [4, 3],
      [5, 4],
      [6, 0],
      [7, 1],
      [8, 2],
      [9, 3],
      [10, 4],
      [11, 0],
      [12, 1],
      [13, 2],
      [14, 3],
      [15, 4],
    ]);
    expect(io.opens).toBe(io.reads);
    expect(io.opens).toBeGreaterThan(1);
    reader.close();
  });

  it('reports data missing from a segment as CORRUPT_DATA at the first missing offset', () => {
    const io = new CountingIO();
    const writer = StorageWriter.open('/s', { io });
    writer.append([batch(1n, 4)], 'none');
    writer.close();
    const reader = StorageReader.open('/s', { io });
    const fd = io.open('/s/d/a.0', 'readwrite');
    io.truncate(fd, 25);
    io.close(fd);
    expect(() => reader.get('d', 'a', 1n, validateGetOptions())).toThrow(
      expect.objectContaining({
        code: 'CORRUPT_DATA',
        details: { file: 'd/a.0', offset: 25, reason: 'data missing' },
      }),
    );
    reader.close();
  });
});
