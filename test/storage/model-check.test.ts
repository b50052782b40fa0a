import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import type { EventStore } from '../../src/api/event-store.js';
import { FaultInjectingFileIO } from '../../src/storage/fault-io.js';
import { StorageEngine, type StorageEngineOptions } from '../../src/storage/storage-engine.js';
import { ManualClock, runModelCheck } from '../support/model-check.js';

const SEED = Number(process.env.RINGSTORE_SEED ?? 20_261_124);

describe(`StorageEngine equals MemoryEventStore (model-based, seeds ${SEED}…${SEED + 3}; set RINGSTORE_SEED to change)`, () => {
  it('in-memory files, default sizes', async () => {
    const clock = new ManualClock();
    let io = new FaultInjectingFileIO();
    const options = (): StorageEngineOptions => ({ io, clock: clock.read });
    await runModelCheck(
      async () => {
        io = new FaultInjectingFileIO();
        return StorageEngine.open('/store', options());
      },
      async (store: EventStore) => {
        await store.close();
        return StorageEngine.open('/store', options());
      },
      { seed: SEED, numRuns: 200, clock },
    );
  });

  it('in-memory files, tiny generations and segments', async () => {
    const clock = new ManualClock();
    let io = new FaultInjectingFileIO();
    const options = (): StorageEngineOptions => ({
      io,
      clock: clock.read,
      generationBytes: 100,
      segmentBytes: 300,
      indexExtentBytes: 256,
      dataExtentBytes: 128,
    });
    await runModelCheck(
      async () => {
        io = new FaultInjectingFileIO();
        return StorageEngine.open('/store', options());
      },
      async (store: EventStore) => {
        await store.close();
        return StorageEngine.open('/store', options());
      },
      { seed: SEED + 1, numRuns: 150, clock },
    );
  });

  it('in-memory files, tiny sizes, reopened from what a power loss leaves (no close)', async () => {
    const clock = new ManualClock();
    let io = new FaultInjectingFileIO();
    const options = (): StorageEngineOptions => ({
      io,
      clock: clock.read,
      generationBytes: 100,
      segmentBytes: 300,
      indexExtentBytes: 256,
      dataExtentBytes: 128,
    });
    await runModelCheck(
      async () => {
        io = new FaultInjectingFileIO();
        return StorageEngine.open('/store', options());
      },
      async () => {
        // Every put the model holds was acknowledged with 'fsync': only synced bytes may count.
        io = io.crash();
        return StorageEngine.open('/store', options());
      },
      { seed: SEED + 3, numRuns: 100, clock },
    );
  });

  it('real files in a temp directory', async () => {
    const clock = new ManualClock();
    const root = mkdtempSync(join(tmpdir(), 'ringstore-model-'));
    let dir = '';
    let n = 0;
    try {
      await runModelCheck(
        async () => {
          dir = join(root, `run-${n++}`);
          return StorageEngine.open(dir, { clock: clock.read, durability: 'write' });
        },
        async (store: EventStore) => {
          await store.close();
          return StorageEngine.open(dir, { clock: clock.read, durability: 'write' });
        },
        { seed: SEED + 2, numRuns: 20, clock },
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
