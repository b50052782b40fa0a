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

  // Tiny sizes everywhere, the index included: checkpoints every ~2 batches, runs merged two at a
  // time, two cached instances, a one-block index cache — evictions, merges and checkpoints happen
  // all through each run, before and after reopens and power losses.
  const TINY = {
    generationBytes: 100,
    segmentBytes: 300,
    indexExtentBytes: 256,
    dataExtentBytes: 128,
    checkpointIndexBytes: 256,
    runFanIn: 2,
    instanceCacheSize: 2,
    indexCacheBytes: 4096,
  };

  /** A model check on in-memory files with tiny sizes; `reopen` makes the next file image. */
  async function tinyRun(
    seed: number,
    numRuns: number,
    reopen: (io: FaultInjectingFileIO, store: EventStore) => Promise<FaultInjectingFileIO>,
  ): Promise<void> {
    const clock = new ManualClock();
    let io = new FaultInjectingFileIO();
    const options = (): StorageEngineOptions => ({ io, clock: clock.read, ...TINY });
    await runModelCheck(
      async () => {
        io = new FaultInjectingFileIO();
        return StorageEngine.open('/store', options());
      },
      async (store: EventStore) => {
        io = await reopen(io, store);
        return StorageEngine.open('/store', options());
      },
      { seed, numRuns, clock },
    );
  }

  it('in-memory files, tiny generations, segments and extents', async () => {
    await tinyRun(SEED + 1, 150, async (io, store) => {
      await store.close();
      return io;
    });
  });

  it('in-memory files, tiny sizes, reopened from what a power loss leaves (no close)', async () => {
    // Every put the model holds was acknowledged with 'fsync': only synced bytes may count.
    await tinyRun(SEED + 3, 100, async (io) => io.crash());
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
