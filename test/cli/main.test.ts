import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { inspectStore } from '../../src/cli/inspect.js';
import { runCli } from '../../src/cli/main.js';
import { StorageEngine } from '../../src/storage/storage-engine.js';
import { capture } from '../support/capture.js';

const dirs: string[] = [];
function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ringstore-cli-'));
  dirs.push(dir);
  return dir;
}

afterEach(() => {
  vi.restoreAllMocks();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('ringstore CLI', () => {
  it('prints usage, and exits 2 on an unknown command or a bad option', async () => {
    const io = capture();
    expect(await runCli(['help'])).toBe(0);
    expect(io.out()).toContain('usage: ringstore');
    expect(await runCli(['frobnicate'])).toBe(2);
    expect(io.err()).toContain('unknown command');
    expect(await runCli(['serve', '--host', '0.0.0.0'], {})).toBe(2);
    expect(io.err()).toContain('INVALID_OPTION');
    expect(await runCli(['serve', '--help'])).toBe(0);
    expect(io.out()).toContain('RINGSTORE_RING_BYTES');
    expect(await runCli(['inspect'])).toBe(2);
  });

  it('inspect lists domains, aggregate types, event types, counts and sizes', async () => {
    const dir = freshDir();
    const store = StorageEngine.open(dir);
    await store.put('billing', 'invoice', 1n, [{ type: 'Opened', data: 'abc' }, { type: 'Paid' }]);
    await store.put('billing', 'invoice', 2n, [{ type: 'Opened', data: 'de' }]);
    await store.put('billing', 'payment', 1n, [{ type: 'Received' }]);
    await store.put('hr', 'person', 9n, [{ type: 'Hired', data: 'x' }]);
    await store.close();
    const [billing, hr] = inspectStore(dir);
    expect(billing).toMatchObject({
      domain: 'billing',
      events: 4,
      instances: 3,
      dataBytes: 5,
      aggregateTypes: { invoice: { events: 3, instances: 2 }, payment: { events: 1, instances: 1 } },
      eventTypes: { Opened: 2, Paid: 1, Received: 1 },
    });
    expect(Object.values(billing?.files ?? {}).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect(hr).toMatchObject({ domain: 'hr', events: 1, instances: 1 });
    const io = capture();
    expect(await runCli(['inspect', '--dir', dir])).toBe(0);
    expect(io.out()).toContain('domain billing: 4 events, 3 instances');
    expect(io.out()).toContain('event type Opened: 2');
    expect(await runCli(['inspect', '--dir', dir, '--json'])).toBe(0);
  });

  it('verify exits 0 on a sound store and 1, naming the file, when a payload byte is flipped', async () => {
    const dir = freshDir();
    const store = StorageEngine.open(dir);
    for (let i = 1; i <= 30; i++)
      await store.put('billing', 'invoice', BigInt(i), [{ type: 'Opened', data: `payload-${i}` }]);
    await store.close();
    const io = capture();
    expect(await runCli(['verify', '--dir', dir])).toBe(0);
    expect(io.out()).toMatch(/^ok: 1 domains, 30 index records/);
    const segment = readdirSync(join(dir, 'billing')).find((f) => f.startsWith('invoice.')) as string;
    const path = join(dir, 'billing', segment);
    const bytes = readFileSync(path);
    // Past the 16-byte segment header: a payload byte of the first event.
    bytes[16 + 5] = (bytes[16 + 5] as number) ^ 0xff;
    writeFileSync(path, bytes);
    expect(await runCli(['verify', '--dir', dir])).toBe(1);
    expect(io.out()).toContain('DAMAGED');
    expect(io.out()).toContain(`billing/${segment}`);
    expect(await runCli(['verify', '--dir', join(dir, 'missing')])).toBe(2);
  });

  it('verify calls what a crash leaves RECOVERABLE (exit 0): the next open moves it aside, as serve logs', async () => {
    const dir = freshDir();
    const store = StorageEngine.open(dir);
    await store.put('billing', 'invoice', 1n, [{ type: 'Opened', data: 'x' }]);
    await store.close();
    appendFileSync(join(dir, 'billing', 'index'), Buffer.alloc(40, 0x5a));
    const io = capture();
    expect(await runCli(['verify', '--dir', dir])).toBe(0);
    expect(io.out()).toMatch(/^RECOVERABLE: 1 domains/);
    expect(io.out()).toContain('tail (never acknowledged; the next open moves it aside): billing/index');
    const reopened = StorageEngine.open(dir);
    await reopened.close();
    expect(await runCli(['verify', '--dir', dir])).toBe(0);
    expect(io.out()).toMatch(/\nok: 1 domains/);
  });
});
