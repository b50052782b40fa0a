import { describe, expect, it } from 'vitest';
import { crc32 } from '../../src/model/crc.js';
import { EMPTY_BYTES } from '../../src/model/events.js';
import { validateGetOptions, validateReadOptions } from '../../src/model/queries.js';
import { FaultInjectingFileIO } from '../../src/storage/fault-io.js';
import { StorageReader } from '../../src/storage/reader.js';
import type { AppendBatch, AppendOutcome } from '../../src/storage/types.js';
import { StorageWriter } from '../../src/storage/writer.js';
import type { ExpectedVersion } from '../../src/types.js';

const enc = new TextEncoder();

function batch(
  id: bigint,
  texts: string[],
  options: { expectedVersion?: ExpectedVersion; key?: string; domain?: string; type?: string } = {},
): AppendBatch {
  return {
    domain: options.domain ?? 'd',
    aggregateType: 'a',
    aggregateId: id,
    expectedVersion: options.expectedVersion ?? 'any',
    idempotencyKey: options.key,
    events: texts.map((t) => {
      const data = enc.encode(t);
      return { type: options.type ?? 'E', data, metadata: EMPTY_BYTES, crc: crc32(data) };
    }),
  };
}

function ok(outcome: AppendOutcome | undefined) {
  if (!outcome?.ok) throw new Error(`expected success, got ${JSON.stringify(outcome)}`);
  return outcome.result;
}

describe('StorageWriter.append', () => {
  it('decides batch by batch: later batches see earlier ones, rejects cost no position', () => {
    const writer = StorageWriter.open('/s', { io: new FaultInjectingFileIO() });
    const report = writer.append(
      [
        batch(1n, ['a'], { expectedVersion: 0, key: 'k' }),
        batch(1n, ['b'], { expectedVersion: 0 }),
        batch(1n, ['c', 'd'], { expectedVersion: 1 }),
        batch(1n, ['a'], { key: 'k' }),
        batch(2n, ['e'], { expectedVersion: 'exists' }),
        batch(2n, ['f'], { expectedVersion: 'none' }),
      ],
      'fsync',
    );
    const [first, conflict, third, replay, exists, last] = report.outcomes;
    expect(ok(first)).toMatchObject({ firstVersion: 1, lastVersion: 1, firstPosition: 0, replayed: false });
    expect(conflict).toMatchObject({ ok: false, error: { code: 'VERSION_CONFLICT', actualVersion: 1 } });
    expect(ok(third)).toMatchObject({ firstVersion: 2, lastVersion: 3, firstPosition: 1 });
    expect(ok(replay)).toEqual({ ...ok(first), replayed: true });
    expect(exists).toMatchObject({ ok: false, error: { code: 'VERSION_CONFLICT', actualVersion: 0 } });
    expect(ok(last)).toMatchObject({ firstVersion: 1, firstPosition: 3 });
    expect(writer.version('d', 'a', 1n)).toBe(3);
    writer.close();
  });

  it('cuts generations by encoded size and stamps never-decreasing timestamps', () => {
    const clock = [100, Number.NaN, 200, -5];
    const writer = StorageWriter.open('/s', {
      io: new FaultInjectingFileIO(),
      clock: () => clock.shift() ?? 0,
      generationBytes: 200,
    });
    // Each batch: 72 + 8 index bytes + 50 data bytes = 130 encoded bytes: one per generation.
    const report = writer.append(
      [1n, 2n, 3n, 4n].map((id) => batch(id, ['x'.repeat(50)])),
      'none',
    );
    const stamps = report.outcomes.map((o) => [ok(o).generation, ok(o).timestamp]);
    expect(stamps).toEqual([
      [1, 100],
      [2, 100],
      [3, 200],
      [4, 200],
    ]);
    expect(report.delta.generation).toBe(4);
    expect(writer.generation).toBe(4);
    writer.close();
  });

  it('reports its fsyncs: one per data file and per index for a group commit, none without', () => {
    const io = new FaultInjectingFileIO();
    const writer = StorageWriter.open('/s', { io });
    writer.append([batch(1n, ['warm'])], 'fsync');
    const many = Array.from({ length: 50 }, (_, i) => batch(BigInt(i + 1), ['payload']));
    expect(writer.append(many, 'fsync')).toMatchObject({ fsyncs: 2, durability: 'fsync' });
    expect(writer.append(many, 'none')).toMatchObject({ fsyncs: 0, durability: 'write' });
    expect(writer.append([batch(1n, ['x'], { domain: 'e' })], 'fsync').fsyncs).toBeGreaterThan(2);
    writer.close();
  });

  it('hands out deltas that bring a reader opened earlier up to date, tolerating repeats and gaps', () => {
    const io = new FaultInjectingFileIO();
    const writer = StorageWriter.open('/s', { io });
    const reader = StorageReader.open('/s', { io });
    const first = writer.append([batch(1n, ['one'], { type: 'A' })], 'fsync');
    reader.apply(first.delta);
    reader.apply(first.delta);
    writer.append([batch(1n, ['two'], { type: 'B' })], 'fsync');
    const third = writer.append([batch(2n, ['three'], { type: 'C' })], 'fsync');
    reader.apply(third.delta);
    expect(reader.generation).toBe(3);
    const all = reader.read('d', validateReadOptions());
    expect(all.events.map((e) => [e.type, new TextDecoder().decode(e.data)])).toEqual([
      ['A', 'one'],
      ['B', 'two'],
      ['C', 'three'],
    ]);
    expect(reader.get('d', 'a', 1n, validateGetOptions()).version).toBe(2);
    writer.close();
    reader.close();
  });

  it('keeps each event its own type through runs of one type, known and new names mixed', () => {
    const io = new FaultInjectingFileIO();
    const writer = StorageWriter.open('/s', { io });
    const typed = (id: bigint, aggregateType: string, types: string[]): AppendBatch => ({
      ...batch(id, []),
      aggregateType,
      events: types.map((type, i) => {
        const data = enc.encode(`${type}${i}`);
        return { type, data, metadata: EMPTY_BYTES, crc: crc32(data) };
      }),
    });
    writer.append([typed(1n, 'a', ['A'])], 'none');
    const runs = ['A', 'A', 'B', 'B', 'A', 'C', 'C', 'A'];
    const report = writer.append([typed(1n, 'a', runs), typed(1n, 'z', ['C', 'B', 'B', 'D'])], 'none');
    expect(report.outcomes.map((o) => o.ok)).toEqual([true, true]);
    expect(ok(writer.append([typed(1n, 'z', ['B', 'B', 'D', 'D'])], 'none').outcomes[0])).toMatchObject({
      firstVersion: 5,
    });
    const reader = StorageReader.open('/s', { io });
    const read = (aggregateType: string) =>
      reader
        .get('d', aggregateType, 1n, validateGetOptions())
        .events.map((e) => `${e.type}:${new TextDecoder().decode(e.data)}`);
    expect(read('a')).toEqual(['A:A0', ...runs.map((type, i) => `${type}:${type}${i}`)]);
    expect(read('z')).toEqual(['C:C0', 'B:B1', 'B:B2', 'D:D3', 'B:B0', 'B:B1', 'D:D2', 'D:D3']);
    writer.close();
    reader.close();
  });

  it('refuses a 65,536th event type with TOO_MANY_TYPES and rejects only that batch', () => {
    const writer = StorageWriter.open('/s', { io: new FaultInjectingFileIO() });
    const filler = (from: number, count: number): AppendBatch => ({
      ...batch(1n, []),
      events: Array.from({ length: count }, (_, i) => ({
        type: `T${from + i}`,
        data: new Uint8Array(0),
        metadata: EMPTY_BYTES,
        crc: 0,
      })),
    });
    for (let from = 0; from < 65_535; from += 10_000) {
      const report = writer.append([filler(from, Math.min(10_000, 65_535 - from))], 'none');
      expect(report.outcomes[0]!.ok).toBe(true);
    }
    const report = writer.append([filler(70_000, 1), batch(2n, ['fine'], { type: 'T5' })], 'none');
    expect(report.outcomes[0]).toMatchObject({ ok: false, error: { code: 'TOO_MANY_TYPES' } });
    expect(report.outcomes[1]!.ok).toBe(true);
    writer.close();
  });

  it('never turns a name outside the allowlist into a path', () => {
    const writer = StorageWriter.open('/s', { io: new FaultInjectingFileIO() });
    const report = writer.append(
      [
        batch(1n, ['x'], { domain: '../etc' }),
        { ...batch(1n, ['x']), aggregateType: 'A/../b' },
        batch(1n, ['x'], { type: '9/x' }),
        batch(1n, ['fine']),
      ],
      'none',
    );
    expect(report.outcomes.map((o) => (o.ok ? 'ok' : o.error.code))).toEqual([
      'INVALID_NAME',
      'INVALID_NAME',
      'INVALID_NAME',
      'ok',
    ]);
    writer.close();
  });

  it('rejects, per batch, values that do not fit their on-disk fields', () => {
    const writer = StorageWriter.open('/s', { io: new FaultInjectingFileIO() });
    const big = { type: 'E', data: new Uint8Array(65_536), metadata: EMPTY_BYTES, crc: 0 };
    const report = writer.append(
      [
        { ...batch(1n, ['x']), events: [] },
        { ...batch(1n, ['x']), events: [big] },
        batch(1n, ['x'], { key: 'k'.repeat(65) }),
        { ...batch(1n, ['x']), aggregateId: 0n },
        { ...batch(1n, ['x']), aggregateId: 1n << 64n },
        batch(1n, ['fine']),
      ],
      'none',
    );
    expect(report.outcomes.map((o) => (o.ok ? 'ok' : o.error.code))).toEqual([
      'INVALID_BATCH',
      'EVENT_TOO_LARGE',
      'INVALID_IDEMPOTENCY_KEY',
      'INVALID_ID',
      'INVALID_ID',
      'ok',
    ]);
    writer.close();
  });
});

describe('StorageWriter.writeZerosAhead', () => {
  const KiB = 1024;
  const fileSize = (io: FaultInjectingFileIO, path: string) => io.fileContent(path).byteLength;
  /** Calls writeZerosAhead until it has nothing to do; returns each call's growth of the two files. */
  const zeroUntilDone = (writer: StorageWriter, io: FaultInjectingFileIO, domain = 'd') => {
    const size = () => fileSize(io, `/s/${domain}/a.0`) + fileSize(io, `/s/${domain}/index`);
    const growths: number[] = [];
    for (let call = 0; call < 1000; call++) {
      const before = size();
      if (!writer.writeZerosAhead()) return growths;
      growths.push(size() - before);
    }
    throw new Error('writeZerosAhead never finished');
  };
  const payload = 'x'.repeat(1000);
  const batches = (count: number, domain = 'd') =>
    Array.from({ length: count }, (_, i) => batch(BigInt(i + 1), [payload], { domain }));

  it('extends a file by one lead, 64 KiB per call, once less than half a lead of zeros is left', () => {
    const io = new FaultInjectingFileIO();
    const options = { io, dataExtentBytes: 512 * KiB, indexExtentBytes: 128 * KiB };
    const writer = StorageWriter.open('/s', options);
    writer.append(batches(300), 'fsync');
    const dataEnd = 16 + 300 * 1000;
    // The commit's own extent ended at its last byte: no zeros are left, the lead is the file's size.
    expect(fileSize(io, '/s/d/a.0')).toBe(dataEnd);
    const growths = zeroUntilDone(writer, io);
    expect(growths.length).toBeGreaterThan(1);
    for (const growth of growths) {
      expect(growth).toBeGreaterThan(0);
      expect(growth).toBeLessThanOrEqual(64 * KiB);
    }
    expect(fileSize(io, '/s/d/a.0')).toBe(2 * dataEnd);

    // 250 KB more: inside the zeros written ahead, so the commit writes none and the size stays.
    const before = io.operations;
    writer.append(batches(250), 'fsync');
    expect(io.operations - before).toBe(4); // one data write, one index write, two fdatasyncs
    expect(fileSize(io, '/s/d/a.0')).toBe(2 * dataEnd);

    // Now less than half a lead (512 KiB) is left: the next idle moments add one lead.
    zeroUntilDone(writer, io);
    expect(fileSize(io, '/s/d/a.0')).toBe(2 * dataEnd + 512 * KiB);
    // Small commits with idle moments between them leave the size alone until half of it is used.
    const sizes = new Set<number>();
    for (let i = 0; i < 10; i++) {
      writer.append([batch(BigInt(i + 1), [payload])], 'fsync');
      zeroUntilDone(writer, io);
      sizes.add(fileSize(io, '/s/d/a.0')).add(fileSize(io, '/s/d/index') + 1e9);
    }
    expect(sizes.size).toBe(2);
    writer.close();

    const reopened = StorageWriter.open('/s', options);
    expect(reopened.recovery).toEqual([]);
    reopened.close();
    const reader = StorageReader.open('/s', { io });
    const { events } = reader.get('d', 'a', 7n, validateGetOptions({ verifyCrc: true }));
    expect(events.map((e) => new TextDecoder().decode(e.data))).toEqual([payload, payload, payload]);
    reader.close();
  });

  it('leaves zeros for the next commit of their file to sync, instead of making every commit sync it', () => {
    const io = new FaultInjectingFileIO();
    const writer = StorageWriter.open('/s', { io });
    writer.append([...batches(1, 'd'), ...batches(1, 'e')], 'fsync');
    writer.append([batch(1n, ['y'.repeat(40 * KiB)])], 'fsync');
    expect(zeroUntilDone(writer, io).length).toBeGreaterThan(0);
    // Domain e's commit syncs e's data and index only, not d's data file that got zeros.
    expect(writer.append(batches(1, 'e'), 'fsync').fsyncs).toBe(2);
    // d's next commit syncs its data file, zeros included.
    expect(writer.append(batches(1, 'd'), 'fsync').fsyncs).toBe(2);
    writer.close();
  });

  it('syncs at close a file whose only unsynced bytes are zeros written ahead', () => {
    const io = new FaultInjectingFileIO();
    const writer = StorageWriter.open('/s', { io });
    writer.append([batch(1n, ['y'.repeat(40 * KiB)])], 'fsync');
    expect(zeroUntilDone(writer, io).length).toBeGreaterThan(0);
    const size = fileSize(io, '/s/d/a.0');
    writer.close();
    // A power loss right after the close keeps only synced bytes: the zeros are among them.
    expect(io.crash().fileContent('/s/d/a.0').byteLength).toBe(size);
  });

  it('stops at the segment limit, writes nothing for a closed writer, and fails the writer when a write fails', () => {
    const io = new FaultInjectingFileIO();
    const writer = StorageWriter.open('/s', { io, segmentBytes: 100 * KiB, dataExtentBytes: 1024 * KiB });
    writer.append([batch(1n, ['y'.repeat(60 * KiB)])], 'fsync');
    zeroUntilDone(writer, io);
    expect(fileSize(io, '/s/d/a.0')).toBe(100 * KiB);
    writer.close();
    expect(writer.writeZerosAhead()).toBe(false);

    const failing = new FaultInjectingFileIO();
    const broken = StorageWriter.open('/s', { io: failing });
    // 40 KiB of the first 64 KiB extent used: less than half of the 64 KiB lead is left.
    broken.append([batch(1n, ['z'.repeat(40 * KiB)])], 'fsync');
    failing.failNth('write', 1);
    expect(() => broken.writeZerosAhead()).toThrow(expect.objectContaining({ code: 'STORE_FAILED' }));
    expect(() => broken.append([batch(2n, ['w'])], 'fsync')).toThrow(
      expect.objectContaining({ code: 'STORE_FAILED' }),
    );
    expect(broken.writeZerosAhead()).toBe(false);
    broken.close();
  });
});
