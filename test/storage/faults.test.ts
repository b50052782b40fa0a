import { describe, expect, it } from 'vitest';
import { crc32 } from '../../src/crc.js';
import { hasCode } from '../../src/errors.js';
import { EMPTY_BYTES } from '../../src/model/events.js';
import { FaultInjectingFileIO, type FaultKind } from '../../src/storage/fault-io.js';
import { StorageEngine } from '../../src/storage/storage-engine.js';
import type { AppendBatch } from '../../src/storage/types.js';
import { StorageWriter } from '../../src/storage/writer.js';

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

describe('FaultInjectingFileIO', () => {
  it('keeps only fsynced bytes and fsyncDir-ed entries across a crash, optionally a torn prefix', () => {
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
    expect(new TextDecoder().decode(io.crash(() => 3).fileContent('/d/f'))).toBe('durable-lo');
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
