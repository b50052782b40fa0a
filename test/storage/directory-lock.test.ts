import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirectoryLock } from '../../src/storage/directory-lock.js';
import { StorageEngine } from '../../src/storage/storage-engine.js';

describe('DirectoryLock', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ringstore-lock-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a second open of the same directory with STORE_LOCKED, and frees it on close', async () => {
    const first = StorageEngine.open(dir);
    expect(() => StorageEngine.open(dir)).toThrow(expect.objectContaining({ code: 'STORE_LOCKED' }));
    expect(readFileSync(join(dir, 'LOCK'), 'utf8').trim()).toBe(String(process.pid));
    await first.put('d', 'a', 1n, [{ type: 'A' }]);
    await first.close();
    expect(existsSync(join(dir, 'LOCK'))).toBe(false);
    const second = StorageEngine.open(dir);
    expect((await second.get('d', 'a', 1n)).version).toBe(1);
    await second.close();
  });

  it('takes over a lock left by a process that no longer runs', () => {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    });
    writeFileSync(join(dir, 'LOCK'), `${dead.stdout}\n`);
    const lock = DirectoryLock.acquire(dir);
    expect(readFileSync(join(dir, 'LOCK'), 'utf8').trim()).toBe(String(process.pid));
    lock.release();
  });

  it('takes over an unreadable (torn) lock file', () => {
    writeFileSync(join(dir, 'LOCK'), '');
    DirectoryLock.acquire(dir).release();
    expect(existsSync(join(dir, 'LOCK'))).toBe(false);
  });
});

describe('RingStore directory lock', () => {
  it('refuses a second RingStore on the same directory until the first is closed', async () => {
    const { RingStore } = await import('../../src/api/ring-store.js');
    const dir = mkdtempSync(join(tmpdir(), 'ringstore-lock-'));
    try {
      const first = await RingStore.open({ dir, durability: 'none' });
      await expect(RingStore.open({ dir })).rejects.toMatchObject({ code: 'STORE_LOCKED' });
      await first.put('d', 'a', 1n, [{ type: 'A' }]);
      await first.close();
      const second = await RingStore.open({ dir, durability: 'none' });
      expect((await second.get('d', 'a', 1n)).version).toBe(1);
      await second.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
