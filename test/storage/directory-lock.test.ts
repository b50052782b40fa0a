import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  currentOwner,
  DirectoryLock,
  formatOwner,
  parseOwner,
  processStartTime,
} from '../../src/storage/directory-lock.js';
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
    expect(parseOwner(readFileSync(join(dir, 'LOCK'), 'utf8'))?.pid).toBe(process.pid);
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
    expect(readFileSync(join(dir, 'LOCK'), 'utf8')).toBe(formatOwner(currentOwner()));
    lock.release();
  });

  it('records the pid, the start time and the boot id of its owner', () => {
    const lock = DirectoryLock.acquire(dir);
    const owner = parseOwner(readFileSync(join(dir, 'LOCK'), 'utf8'));
    lock.release();
    expect(owner?.pid).toBe(process.pid);
    if (existsSync('/proc/self/stat')) {
      expect(owner?.start).toMatch(/^[0-9]+$/);
      expect(owner?.boot).toBe(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
    }
  });

  it('takes over a lock whose pid is this process but whose start time is another (pid reuse, PID 1 in a container)', () => {
    const self = currentOwner();
    if (self.start === undefined) return expect(existsSync('/proc/self/stat')).toBe(false);
    const earlier = { ...self, start: String(BigInt(self.start) - 1n) };
    writeFileSync(join(dir, 'LOCK'), formatOwner(earlier));
    const lock = DirectoryLock.acquire(dir);
    expect(readFileSync(join(dir, 'LOCK'), 'utf8')).toBe(formatOwner(self));
    lock.release();
  });

  it('takes over a lock written in another boot, even when its pid runs now', () => {
    writeFileSync(join(dir, 'LOCK'), formatOwner({ ...currentOwner(), boot: 'an-earlier-boot' }));
    const self = currentOwner();
    if (self.boot === undefined) return expect(existsSync('/proc/sys/kernel/random/boot_id')).toBe(false);
    DirectoryLock.acquire(dir).release();
    expect(existsSync(join(dir, 'LOCK'))).toBe(false);
  });

  it('refuses a lock held by this very process (same pid and start time), and reads the old pid-only form', () => {
    writeFileSync(join(dir, 'LOCK'), formatOwner(currentOwner()));
    expect(() => DirectoryLock.acquire(dir)).toThrow(
      expect.objectContaining({ code: 'STORE_LOCKED', message: expect.stringContaining('this process') }),
    );
    writeFileSync(join(dir, 'LOCK'), `${process.pid}\n`);
    expect(() => DirectoryLock.acquire(dir)).toThrow(expect.objectContaining({ code: 'STORE_LOCKED' }));
  });

  it('refuses a lock held by another live process, and takes it over once that process is gone', async () => {
    const compiled = fileURLToPath(new URL('../../dist/src/storage/directory-lock.js', import.meta.url));
    const holder = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { DirectoryLock } from ${JSON.stringify(compiled)};
         DirectoryLock.acquire(${JSON.stringify(dir)});
         process.stdout.write('held\\n');
         process.stdin.resume();`,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const exited = new Promise<void>((resolve) => holder.once('exit', () => resolve()));
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout.once('data', () => resolve());
        holder.once('exit', (code) => reject(new Error(`the lock holder exited with ${code}`)));
      });
      const owner = parseOwner(readFileSync(join(dir, 'LOCK'), 'utf8'));
      expect(owner?.pid).toBe(holder.pid);
      expect(owner?.start).toBe(processStartTime(holder.pid as number));
      expect(() => DirectoryLock.acquire(dir)).toThrow(
        expect.objectContaining({ code: 'STORE_LOCKED', details: { pid: holder.pid } }),
      );
    } finally {
      holder.kill('SIGKILL');
      await exited;
    }
    DirectoryLock.acquire(dir).release();
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
