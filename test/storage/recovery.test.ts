import { describe, expect, it } from 'vitest';
import type { RingStoreError } from '../../src/errors.js';
import { crc32 } from '../../src/model/crc.js';
import { EMPTY_BYTES } from '../../src/model/events.js';
import { validateGetOptions } from '../../src/model/queries.js';
import { type CrashChoice, FaultInjectingFileIO } from '../../src/storage/fault-io.js';
import { StorageReader } from '../../src/storage/reader.js';
import type { AppendBatch } from '../../src/storage/types.js';
import { verifyStore } from '../../src/storage/verify.js';
import { StorageWriter } from '../../src/storage/writer.js';

function batch(aggregateType: string, id: bigint, size: number): AppendBatch {
  const data = new Uint8Array(size).fill(Number(id));
  return {
    domain: 'd',
    aggregateType,
    aggregateId: id,
    expectedVersion: 'any',
    idempotencyKey: `key-${aggregateType}-${id}`,
    events: [{ type: 'E', data, metadata: EMPTY_BYTES, crc: crc32(data) }],
  };
}

/**
 * Removes the domain's checkpoint, as if the process had died before writing its first one: the
 * next open then reads (and recovers) the whole log, which is what these tests damage. Damage below
 * a checkpoint is not read at open; see 'reads below a checkpoint…' for what finds it.
 */
function withoutCheckpoint(io: FaultInjectingFileIO): FaultInjectingFileIO {
  io.unlink('/s/d/checkpoint');
  return io;
}

function store(keepCheckpoint = false): FaultInjectingFileIO {
  const io = new FaultInjectingFileIO();
  const writer = StorageWriter.open('/s', { io, segmentBytes: 100 });
  writer.append([batch('a', 1n, 60), batch('b', 2n, 10)], 'fsync');
  writer.append([batch('a', 3n, 60), batch('b', 4n, 10)], 'fsync');
  writer.close();
  return keepCheckpoint ? io : withoutCheckpoint(io);
}

/** store() and one more commit (b 5, 1 byte), whose record vouches for every batch before it. */
function storeWithLaterRecord(): FaultInjectingFileIO {
  const io = store();
  const writer = StorageWriter.open('/s', { io, segmentBytes: 100 });
  writer.append([batch('b', 5n, 1)], 'fsync');
  writer.close();
  return withoutCheckpoint(io);
}

function openError(io: FaultInjectingFileIO): RingStoreError {
  try {
    StorageWriter.open('/s', { io }).close();
  } catch (err) {
    return err as RingStoreError;
  }
  throw new Error('expected open to fail');
}

describe('recovery', () => {
  it.each([
    ['the whole log (no checkpoint)', false],
    ['a checkpoint and its index files', true],
  ])('rebuilds versions, positions, generation and idempotency keys from %s', (_, keepCheckpoint) => {
    const io = store(keepCheckpoint);
    const writer = StorageWriter.open('/s', { io, segmentBytes: 100 });
    expect(writer.generation).toBe(2);
    expect(writer.version('d', 'a', 3n)).toBe(1);
    const report = writer.append([batch('a', 3n, 1), batch('b', 9n, 1)], 'fsync');
    expect(report.outcomes[0]).toMatchObject({ ok: true, result: { replayed: true, firstPosition: 2 } });
    expect(report.outcomes[1]).toMatchObject({
      ok: true,
      result: { replayed: false, firstPosition: 4, generation: 3 },
    });
    writer.close();
  });

  it('reports a missing data segment as corruption when a later record vouches for its batch', () => {
    const io = storeWithLaterRecord();
    io.unlink('/s/d/a.1');
    const err = openError(io);
    expect(err.code).toBe('CORRUPT_DATA');
    expect(err.details).toMatchObject({ file: 'd/index', reason: 'data file missing' });
    expect(err.details.offset).toBeGreaterThan(0);
  });

  it('cuts a batch of the last commit whose segment file is missing: that commit was never acknowledged', () => {
    const io = store();
    io.unlink('/s/d/a.1');
    const writer = StorageWriter.open('/s', { io, segmentBytes: 100 });
    expect(writer.recovery.map((a) => `${a.action} ${a.file} ${a.reason}`)).toEqual([
      'truncated d/index data file missing',
      'truncated d/b.0 unreferenced data',
    ]);
    expect(writer.version('d', 'a', 3n)).toBe(0);
    expect(writer.version('d', 'b', 4n)).toBe(0);
    expect(writer.version('d', 'b', 2n)).toBe(1);
    writer.close();
  });

  it('cuts an index that got ahead of its data (short segment), moves the cut bytes aside and says so', () => {
    const io = store();
    // b.0 holds the 16-byte header, then b 2 (10 bytes, acknowledged and vouched for), then b 4.
    const shortSegment = io.fileContent('/s/d/b.0').subarray(0, 31);
    io.setFileContent('/s/d/b.0', shortSegment);
    const indexSize = io.fileContent('/s/d/index').byteLength;
    const writer = StorageWriter.open('/s', { io, segmentBytes: 100 });
    expect(writer.recovery).toEqual([
      {
        file: 'd/index',
        action: 'truncated',
        from: indexSize,
        to: expect.any(Number),
        quarantined: expect.any(Number),
        quarantinedFrom: expect.any(Number),
        quarantine: expect.stringMatching(/^d\/index\.cut-\d+$/),
        reason: 'data missing',
      },
      {
        file: 'd/b.0',
        action: 'truncated',
        from: 31,
        to: 26,
        quarantined: 5,
        quarantinedFrom: 26,
        quarantine: 'd/b.0.cut-26',
        reason: 'unreferenced data',
      },
    ]);
    const [indexCut] = writer.recovery;
    expect(io.fileContent(`/s/${indexCut!.quarantine}`).byteLength).toBe(indexCut!.quarantined);
    expect(io.fileContent('/s/d/b.0.cut-26')).toEqual(shortSegment.subarray(26, 31));
    // Only the last record (b 4) lost its data; a 3, written before it, keeps its place.
    expect(writer.version('d', 'b', 4n)).toBe(0);
    expect(writer.version('d', 'a', 3n)).toBe(1);
    writer.close();
    const again = StorageWriter.open('/s', { io, segmentBytes: 100 });
    expect(again.recovery).toEqual([]);
    again.close();
  });

  it('cuts data that no surviving record references', () => {
    const io = store();
    const writer = StorageWriter.open('/s', { io, segmentBytes: 100 });
    writer.append([batch('c', 5n, 10)], 'none');
    writer.close();
    withoutCheckpoint(io);
    // Damage the last index record (c 5): no record vouches for it, so it is a torn tail.
    const index = io.fileContent('/s/d/index');
    let last = index.byteLength;
    while (index[last - 1] === 0) last--;
    index[last - 10]! ^= 0xff;
    io.setFileContent('/s/d/index', index);
    const recovered = StorageWriter.open('/s', { io, segmentBytes: 100 });
    expect(recovered.recovery.map((a) => `${a.action} ${a.file}`)).toEqual([
      'truncated d/index',
      'truncated d/c.0',
    ]);
    expect(recovered.version('d', 'c', 5n)).toBe(0);
    recovered.close();
  });

  it('refuses damage to bytes a later record vouches for, and changes nothing', () => {
    const io = store();
    const index = io.fileContent('/s/d/index');
    index[20]! ^= 0x01;
    io.setFileContent('/s/d/index', index);
    const before = io.fileContent('/s/d/index');
    const err = openError(io);
    expect(err.code).toBe('CORRUPT_DATA');
    expect(err.details).toMatchObject({ file: 'd/index', offset: 0 });
    expect(Buffer.from(io.fileContent('/s/d/index')).equals(before)).toBe(true);
  });

  it('says which domains open rebuilt from the log, and why; none after a clean close', () => {
    const io = store(true);
    const clean = StorageWriter.open('/s', { io, segmentBytes: 100 });
    expect(clean.indexRebuilds).toEqual([]);
    clean.close();
    const checkpoint = io.fileContent('/s/d/checkpoint');
    checkpoint[9]! ^= 0xff;
    io.setFileContent('/s/d/checkpoint', checkpoint);
    const damaged = StorageWriter.open('/s', { io, segmentBytes: 100 });
    expect(damaged.indexRebuilds).toEqual([
      { domain: 'd', reason: expect.stringMatching(/^checkpoint damaged/), batches: 4 },
    ]);
    expect(damaged.version('d', 'a', 3n)).toBe(1);
    damaged.close();
    const missing = StorageWriter.open('/s', { io: withoutCheckpoint(io), segmentBytes: 100 });
    expect(missing.indexRebuilds).toEqual([{ domain: 'd', reason: 'no checkpoint', batches: 4 }]);
    missing.close();
  });

  it('reads below a checkpoint only when asked: damage there fails the read that meets it, not the open', () => {
    const io = store(true);
    const index = io.fileContent('/s/d/index');
    index[20]! ^= 0x01;
    io.setFileContent('/s/d/index', index);
    const writer = StorageWriter.open('/s', { io, segmentBytes: 100 });
    expect(writer.recovery).toEqual([]);
    expect(writer.version('d', 'a', 3n)).toBe(1);
    writer.close();
    const reader = StorageReader.open('/s', { io });
    expect(() => reader.get('d', 'a', 1n, validateGetOptions({}))).toThrow(
      expect.objectContaining({
        code: 'CORRUPT_DATA',
        details: expect.objectContaining({ file: 'd/index', offset: 0 }),
      }),
    );
    expect(reader.get('d', 'b', 4n, validateGetOptions({})).version).toBe(1);
    reader.close();
    const report = verifyStore('/s', undefined, { io });
    expect(report.problems).toContainEqual(
      expect.objectContaining({ file: 'd/index', offset: 0, severity: 'corrupt' }),
    );
  });

  it('refuses a log shorter than its checkpoint; without the checkpoint, open cuts as for a tail', () => {
    const io = store(true);
    const checkpointed = io.fileContent('/s/d/index');
    // Cut inside the second record: bytes below the checkpoint's indexEnd were synced.
    const records = new DataView(checkpointed.buffer, checkpointed.byteOffset).getUint32(0, true);
    io.setFileContent('/s/d/index', checkpointed.subarray(0, records + 10));
    const err = openError(io);
    expect(err.code).toBe('CORRUPT_DATA');
    expect(err.details).toMatchObject({ file: 'd/index', offset: records + 10 });
    expect(String(err.details.reason)).toMatch(/below the checkpoint's end \d+: synced bytes are missing/);
    expect(io.fileContent('/s/d/index').byteLength).toBe(records + 10);
    expect(verifyStore('/s', undefined, { io }).problems).toContainEqual(
      expect.objectContaining({ file: 'd/index', severity: 'corrupt' }),
    );
    // The operator's way out (docs/OPERATIONS.md): remove the checkpoint; open reads the whole log.
    const writer = StorageWriter.open('/s', { io: withoutCheckpoint(io), segmentBytes: 100 });
    expect(writer.recovery.map((a) => `${a.action} ${a.file}`)).toContain('truncated d/index');
    expect(writer.version('d', 'a', 1n)).toBe(1);
    expect(writer.version('d', 'b', 2n)).toBe(0);
    writer.close();
  });

  it('refuses a data segment shorter than its checkpoint says, and changes nothing', () => {
    const io = store(true);
    io.setFileContent('/s/d/b.0', io.fileContent('/s/d/b.0').subarray(0, 20));
    const before = io.listFiles('/s').map((f) => `${f} ${io.fileContent(f).byteLength}`);
    expect(openError(io)).toMatchObject({ code: 'CORRUPT_DATA', details: { file: 'd/b.0', offset: 20 } });
    expect(io.listFiles('/s').map((f) => `${f} ${io.fileContent(f).byteLength}`)).toEqual(before);
  });

  it.each([
    ['shorter than', (registry: Uint8Array) => registry.subarray(0, registry.byteLength - 3)],
    ['zeroed below', (registry: Uint8Array) => Uint8Array.from(registry).fill(0, registry.byteLength - 6)],
  ])("refuses a registry %s the checkpoint's registryEnd", (_, damage) => {
    const io = store(true);
    const registry = damage(io.fileContent('/s/d/registry'));
    io.setFileContent('/s/d/registry', registry);
    const err = openError(io);
    expect(err.code).toBe('CORRUPT_DATA');
    expect(err.details.file).toBe('d/registry');
    expect(io.fileContent('/s/d/registry')).toEqual(registry);
  });

  it('refuses damage to the last registry record below the checkpoint, where it would be a tail without one', () => {
    const io = store(true);
    const registry = io.fileContent('/s/d/registry');
    const last = registry.byteLength - 2;
    registry[last]! ^= 0x01;
    io.setFileContent('/s/d/registry', registry);
    const err = openError(io);
    expect(err.code).toBe('CORRUPT_DATA');
    expect(err.details.file).toBe('d/registry');
    expect(String(err.details.reason)).toMatch(/below the checkpoint's end \d+: synced bytes are damaged/);
    expect(io.fileContent('/s/d/registry')).toEqual(registry);
  });

  it('refuses a data segment shorter than the data of a record a later one vouches for', () => {
    const io = storeWithLaterRecord();
    // b.0: the 16-byte header, b 2 (10 bytes), b 4 (10 bytes), b 5 (1 byte); b 4 is vouched for.
    io.setFileContent('/s/d/b.0', io.fileContent('/s/d/b.0').subarray(0, 30));
    const err = openError(io);
    expect(err.code).toBe('CORRUPT_DATA');
    expect(err.details).toMatchObject({ file: 'd/index' });
    expect(String(err.details.reason)).toMatch(
      /data file 0 ends at 30, before this record's data ends at 36/,
    );
  });

  it('keeps what a reopen after a kill kept through a power loss: a batch with no data never rolls a segment', () => {
    const io = new FaultInjectingFileIO();
    const first = StorageWriter.open('/s', { io, segmentBytes: 100 });
    first.append([batch('a', 1n, 200)], 'fsync'); // a.0 holds more than segmentBytes
    first.append([batch('a', 2n, 150)], 'write'); // rolls to a.1, whose bytes stay unsynced
    first.append([batch('a', 3n, 0)], 'write'); // no data: it used to roll to a.2, which no file holds
    // The process is killed (the page cache keeps a.1) and the store opened again.
    const second = StorageWriter.open('/s', { io, segmentBytes: 100 });
    expect(second.recovery).toEqual([]);
    second.append([batch('a', 4n, 0)], 'fsync'); // its record vouches for the batches before it
    // Then the power fails: only synced bytes survive.
    const lost = io.crash();
    const problems = verifyStore('/s', undefined, { io: lost }).problems;
    expect(problems).toEqual([]);
    const reader = StorageReader.open('/s', { io: lost });
    try {
      expect(reader.get('d', 'a', 2n, validateGetOptions({ verifyCrc: true })).events).toHaveLength(1);
    } finally {
      reader.close();
    }
    const writer = StorageWriter.open('/s', { io: withoutCheckpoint(lost), segmentBytes: 100 });
    expect(writer.version('d', 'a', 2n)).toBe(1);
    writer.close();
  });

  it('refuses a store of format version 1 with UNSUPPORTED_FORMAT', () => {
    const io = store();
    const index = io.fileContent('/s/d/index');
    index[7] = 1;
    io.setFileContent('/s/d/index', index);
    expect(openError(io)).toMatchObject({
      code: 'UNSUPPORTED_FORMAT',
      details: { file: 'd/index', version: 1 },
    });
  });
});
describe('quarantine', () => {
  // Each crash keeps the unsynced index pages but not the data: the last batch fails its CRC.
  const keepIndex: CrashChoice = { size: () => 'current', page: (path) => path.endsWith('/index') };

  it('never overwrites the bytes an earlier recovery moved aside to the same name', () => {
    let io = new FaultInjectingFileIO();
    const writer = StorageWriter.open('/s', { io });
    writer.append([batch('a', 1n, 50)], 'fsync');
    writer.append([batch('a', 2n, 50)], 'write');
    io = io.crash(keepIndex);
    const first = StorageWriter.open('/s', { io });
    expect(first.recovery.map((a) => a.reason)).toEqual(['data fails its CRC']);
    const name = first.recovery[0]!.quarantine;
    expect(name).toMatch(/^d\/index\.cut-\d+$/);
    const firstCut = io.fileContent(`/s/${name}`);
    // The next unacknowledged batch lands at the same offset and is cut there too.
    first.append([batch('a', 3n, 50)], 'write');
    io = io.crash(keepIndex);
    const second = StorageWriter.open('/s', { io });
    expect(second.recovery.map((a) => a.quarantine)).toEqual([`${name}.1`]);
    second.close();
    expect(io.fileContent(`/s/${name}`)).toEqual(firstCut);
    expect(io.fileContent(`/s/${name}.1`)).not.toEqual(firstCut);
    expect(io.fileContent(`/s/${name}.1`).byteLength).toBe(firstCut.byteLength);
  });

  it('reuses a quarantine file left by an interrupted recovery of the same cut', () => {
    let io = new FaultInjectingFileIO();
    const writer = StorageWriter.open('/s', { io });
    writer.append([batch('a', 1n, 50)], 'fsync');
    writer.append([batch('a', 2n, 50)], 'write');
    io = io.crash(keepIndex);
    const clean = io.crash();
    const start = clean.operations;
    const cleanRecovery = StorageWriter.open('/s', { io: clean });
    const openOperations = clean.operations - start;
    const name = cleanRecovery.recovery[0]!.quarantine;
    cleanRecovery.close();
    let reused = 0;
    for (let k = 1; k < openOperations; k++) {
      const attempt = io.crash();
      attempt.powerLossAfter(k);
      expect(() => StorageWriter.open('/s', { io: attempt })).toThrow(/EIO/);
      const after = attempt.crash();
      const left = after.listFiles('/').includes(`/s/${name}`);
      const recovered = StorageWriter.open('/s', { io: after });
      recovered.close();
      expect(after.listFiles('/')).toEqual(clean.listFiles('/'));
      expect(after.fileContent(`/s/${name}`)).toEqual(clean.fileContent(`/s/${name}`));
      if (left) reused++;
    }
    // Some crash points left the quarantine file durable before the index was cut.
    expect(reused).toBeGreaterThan(0);
  });
});
