import { describe, expect, it } from 'vitest';
import { crc32 } from '../../src/model/crc.js';
import { EMPTY_BYTES } from '../../src/model/events.js';
import { FaultInjectingFileIO } from '../../src/storage/fault-io.js';
import { decodeIndexRecord, emptyIndexRecord } from '../../src/storage/index-record.js';
import type { AppendBatch } from '../../src/storage/types.js';
import { StorageWriter } from '../../src/storage/writer.js';

/** FaultInjectingFileIO whose off-thread syncs wait until the test releases them, one by one. */
class HeldSyncIO extends FaultInjectingFileIO {
  readonly held: { fd: number; release: () => void; fail: (err: Error) => void }[] = [];

  override fdatasyncAsync(fd: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.held.push({
        fd,
        release: () => {
          this.fdatasync(fd);
          resolve();
        },
        fail: reject,
      });
    });
  }

  releaseAll(): void {
    for (const sync of this.held.splice(0)) sync.release();
  }
}

function batch(id: bigint, text: string): AppendBatch {
  const data = new TextEncoder().encode(text);
  return {
    domain: 'd',
    aggregateType: 'a',
    aggregateId: id,
    expectedVersion: 'any',
    idempotencyKey: undefined,
    events: [{ type: 'E', data, metadata: EMPTY_BYTES, crc: crc32(data) }],
  };
}

/** syncedEnd of every index record of domain d, in file order. */
function vouches(io: FaultInjectingFileIO): number[] {
  const bytes = io.fileContent('/s/d/index');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const record = emptyIndexRecord();
  const out: number[] = [];
  for (let at = 0; decodeIndexRecord(bytes, view, at, record) === undefined; at += record.recordLength) {
    out.push(record.syncedEnd);
  }
  return out;
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('overlapped commits (StorageWriter.appendOverlapped)', () => {
  it('writes commit N+1 while commit N syncs, acknowledges in order, and vouches only for synced bytes', async () => {
    const io = new HeldSyncIO();
    const writer = StorageWriter.open('/s', { io });
    const acked: number[] = [];
    const first = writer.appendOverlapped([batch(1n, 'one')]).then((r) => {
      acked.push(1);
      return r;
    });
    expect(io.held.length).toBeGreaterThan(0);
    const heldForFirst = io.held.splice(0);
    // Commit 2 is admitted, packed, encoded and written while every sync of commit 1 is still open.
    const second = writer.appendOverlapped([batch(2n, 'two')]).then((r) => {
      acked.push(2);
      return r;
    });
    expect(writer.version('d', 'a', 2n)).toBe(1);
    expect(vouches(io)).toEqual([0, 0]);
    // Commit 2's syncs return first: it still waits for commit 1.
    io.releaseAll();
    await flush();
    expect(acked).toEqual([]);
    for (const sync of heldForFirst) sync.release();
    const [one, two] = await Promise.all([first, second]);
    expect(acked).toEqual([1, 2]);
    expect(one.durability).toBe('fsync');
    // One duration per sync, as the fsync metrics count them.
    expect(one.syncSeconds).toHaveLength(one.fsyncs);
    expect(one.fsyncs).toBeGreaterThan(0);
    expect(two.outcomes[0]).toMatchObject({ ok: true, result: { durability: 'fsync', firstPosition: 1 } });
    // Only now may new records vouch for both commits.
    const third = writer.appendOverlapped([batch(3n, 'three')]);
    io.releaseAll();
    await third;
    const [, secondVouch, thirdVouch] = vouches(io);
    expect(secondVouch).toBe(0);
    expect(thirdVouch).toBeGreaterThan(0);
    await writer.drain();
    writer.close();
  });

  it('a failed sync fails the writer and rejects that commit and every later one', async () => {
    const io = new HeldSyncIO();
    const writer = StorageWriter.open('/s', { io });
    const first = writer.appendOverlapped([batch(1n, 'one')]);
    const heldForFirst = io.held.splice(0);
    const second = writer.appendOverlapped([batch(2n, 'two')]);
    io.releaseAll();
    const eio = Object.assign(new Error('EIO: injected'), { code: 'EIO' });
    heldForFirst[0]!.fail(eio);
    for (const sync of heldForFirst.slice(1)) sync.release();
    await expect(first).rejects.toMatchObject({ code: 'STORE_FAILED' });
    await expect(second).rejects.toMatchObject({ code: 'STORE_FAILED' });
    expect(writer.failed).toBe(true);
    await expect(writer.appendOverlapped([batch(3n, 'three')])).rejects.toMatchObject({
      code: 'STORE_FAILED',
    });
    await writer.drain();
    writer.close();
  });
});
