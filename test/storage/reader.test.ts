import { describe, expect, it } from 'vitest';
import { crc32 } from '../../src/crc.js';
import { validateGetOptions, validateReadOptions } from '../../src/model/queries.js';
import { FaultInjectingFileIO } from '../../src/storage/fault-io.js';
import { StorageReader } from '../../src/storage/reader.js';
import type { AppendBatch } from '../../src/storage/types.js';
import { StorageWriter } from '../../src/storage/writer.js';

/** Counts the FileIO calls a reader makes, to check it reads each batch span once and caches fds. */
class CountingIO extends FaultInjectingFileIO {
  reads = 0;
  opens = 0;
  override read(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number {
    this.reads++;
    return super.read(fd, buffer, offset, length, position);
  }
  override open(path: string, mode: 'read' | 'readwrite' | 'create'): number {
    this.opens++;
    return super.open(path, mode);
  }
}

function batch(id: bigint, count: number, type = 'E'): AppendBatch {
  return {
    domain: 'd',
    aggregateType: 'a',
    aggregateId: id,
    expectedVersion: 'any',
    idempotencyKey: undefined,
    events: Array.from({ length: count }, (_, i) => {
      const data = new Uint8Array(10).fill(i);
      return { type, data, crc: crc32(data) };
    }),
  };
}

describe('StorageReader', () => {
  it('reads a batch span with one positional read and keeps the data file open', () => {
    const io = new CountingIO();
    const writer = StorageWriter.open('/s', { io });
    writer.append([batch(1n, 10), batch(2n, 5), batch(1n, 10)], 'none');
    writer.close();
    const reader = StorageReader.open('/s', { io });
    io.reads = 0;
    io.opens = 0;
    const instance = reader.get('d', 'a', 1n, validateGetOptions({ fromVersion: 3, toVersion: 15 }));
    expect(instance.events.map((e) => e.version)).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    expect(io.reads).toBe(2);
    const log = reader.read('d', validateReadOptions({ fromPosition: 8, limit: 10 }));
    expect(log.events.map((e) => e.position)).toEqual([8, 9, 10, 11, 12, 13, 14, 15, 16, 17]);
    expect(log.nextPosition).toBe(18);
    expect(io.reads).toBe(5);
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
});
