import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { consumer } from '../../src/api/consumer.js';
import { RingStore } from '../../src/api/ring-store.js';
import { instanceStream, readStream } from '../../src/api/streams.js';
import { subscribe } from '../../src/api/subscription.js';
import { RingStoreError } from '../../src/errors.js';
import { MemoryEventStore } from '../../src/model/memory-store.js';
import { StorageEngine } from '../../src/storage/storage-engine.js';

/** The error `act` throws or rejects with, as code and details. */
async function refusal(act: () => unknown): Promise<{ code: string; details: object } | undefined> {
  try {
    await act();
    return undefined;
  } catch (err) {
    if (!(err instanceof RingStoreError)) throw err;
    return { code: err.code, details: err.details };
  }
}

describe('a misspelt option is an error naming it, never a check silently skipped', () => {
  it('put, get and read refuse options they do not know, and a verifyCrc that is not a boolean', async () => {
    const store = new MemoryEventStore();
    await store.put('d', 't', 1, [{ type: 'A' }]);
    const cases: [() => unknown, string, string][] = [
      // Without the check, this put appended at any version.
      [
        () => store.put('d', 't', 1, [{ type: 'B' }], { expectedversion: 0 } as never),
        'INVALID_BATCH',
        'expectedversion',
      ],
      [() => store.get('d', 't', 1, { fromversion: 3 } as never), 'INVALID_QUERY', 'fromversion'],
      [() => store.read('d', { Types: ['A'] } as never), 'INVALID_QUERY', 'Types'],
      [() => store.get('d', 't', 1, { verifyCrc: 'yes' } as never), 'INVALID_QUERY', 'verifyCrc'],
      [() => store.read('d', { verifyCrc: 1 } as never), 'INVALID_QUERY', 'verifyCrc'],
    ];
    for (const [act, code, option] of cases) {
      expect(await refusal(act), option).toEqual({ code, details: { option } });
    }
    expect((await store.get('d', 't', 1)).version).toBe(1);
    expect(await refusal(() => store.put('d', 't', 1, [{ type: 'B' }], [] as never))).toMatchObject({
      code: 'INVALID_BATCH',
    });
  });

  it('streams, subscriptions and consumers refuse options they do not know, and options that are not objects', async () => {
    const store = new MemoryEventStore();
    const cases: [() => unknown, string][] = [
      [() => readStream(store, 'd', { topPosition: 5 } as never), 'INVALID_QUERY'],
      [() => instanceStream(store, 'd', 't', 1, { toversion: 2 } as never), 'INVALID_QUERY'],
      [() => subscribe(store, 'd', { fromposition: 3 } as never), 'INVALID_OPTION'],
      [() => subscribe(store, 'd', null as never), 'INVALID_OPTION'],
      [() => subscribe(store, 'd', 'x' as never), 'INVALID_OPTION'],
      [() => consumer(store, 'mailer', { domain: 'd', checkpointevery: 5 } as never), 'INVALID_OPTION'],
    ];
    for (const [act, code] of cases) {
      expect((await refusal(act))?.code, String(act)).toBe(code);
    }
    // The known ones still go through.
    const subscription = subscribe(store, 'd', { fromPosition: 0, endWhenCaughtUp: true });
    await subscription.close();
    expect(readStream(store, 'd', { toPosition: 5, pageSize: 10 })).toBeDefined();
  });
});

describe('arguments of the wrong kind get a catalog code, not a TypeError', () => {
  it('expectedVersion, watch listeners, backup options and data directories', async () => {
    const store = new MemoryEventStore();
    for (const expectedVersion of [1n, Number.NaN, { v: 1 }]) {
      expect(
        await refusal(() => store.put('d', 't', 1, [{ type: 'A' }], { expectedVersion } as never)),
      ).toMatchObject({ code: 'INVALID_VERSION' });
    }
    expect(await refusal(() => store.watch('not a function' as never))).toMatchObject({
      code: 'INVALID_OPTION',
    });
    const root = mkdtempSync(join(tmpdir(), 'ringstore-kinds-'));
    try {
      const file = join(root, 'a-file');
      writeFileSync(file, 'x');
      for (const dir of [file, join(file, 'below'), join(root, 'x\0y')]) {
        expect(await refusal(() => RingStore.open({ dir })), dir).toMatchObject({
          code: 'INVALID_OPTION',
          details: { option: 'dir' },
        });
      }
      const engine = StorageEngine.open(join(root, 'store'));
      try {
        for (const options of [{ link: 'yes' }, { onProgress: 5 }, { links: false }, null]) {
          expect(await refusal(() => engine.backup(join(root, 'copy'), options as never))).toMatchObject({
            code: 'INVALID_OPTION',
          });
        }
      } finally {
        await engine.close();
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
