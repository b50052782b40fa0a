import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { StorageEngine } from '../../src/storage/storage-engine.js';
import { verifyStore } from '../../src/storage/verify.js';

describe('verifyStore', () => {
  it('counts a clean store, then reports payload damage and a torn tail with file and offset', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringstore-verify-'));
    try {
      const store = StorageEngine.open(dir);
      await store.put('billing', 'invoice', 1n, [
        { type: 'Opened', data: 'abc' },
        { type: 'Paid', data: 'defgh' },
      ]);
      await store.put('billing', 'customer', 2n, [{ type: 'Joined', data: 'xyz' }]);
      await store.put('audit', 'entry', 3n, [{ type: 'Logged' }]);
      await store.close();

      const progress: string[] = [];
      const clean = verifyStore(dir, (p) => progress.push(p.domain));
      expect(clean).toMatchObject({ ok: true, indexRecords: 3, events: 4, dataBytes: 11, problems: [] });
      expect(clean.registryRecords).toBe(2 + 3 + 2);
      expect(clean.domains.map((d) => d.domain)).toEqual(['audit', 'billing']);
      expect(progress).toEqual(['audit', 'billing']);

      const segment = join(dir, 'billing', 'invoice.0');
      const bytes = readFileSync(segment);
      // Payloads start after the 16-byte segment header: 'defgh', the second event, starts at 19.
      bytes[16 + 4]! ^= 0x40;
      writeFileSync(segment, bytes);
      // Bytes that are not zeros past the last record, which no record vouches for: a torn tail.
      appendFileSync(join(dir, 'audit', 'index'), Buffer.alloc(30, 0xab));
      const damaged = verifyStore(dir);
      expect(damaged.ok).toBe(false);
      expect(damaged.problems).toEqual([
        {
          file: 'audit/index',
          offset: expect.any(Number),
          reason: expect.stringContaining('torn tail'),
          severity: 'tail',
        },
        { file: 'billing/invoice.0', offset: 19, reason: 'event data fails its CRC', severity: 'corrupt' },
      ]);

      // Reads that ask for it see the damage too; recovery cuts the tail and leaves the payload alone.
      const reopened = StorageEngine.open(dir);
      await expect(reopened.get('billing', 'invoice', 1n, { verifyCrc: true })).rejects.toMatchObject({
        code: 'CORRUPT_DATA',
        details: { file: 'billing/invoice.0', offset: 19 },
      });
      await reopened.close();
      expect(verifyStore(dir).problems.map((p) => p.file)).toEqual(['billing/invoice.0']);
      // What recovery cut was moved aside, not deleted.
      expect(readdirSync(join(dir, 'audit')).filter((name) => name.includes('.cut-'))).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports damage below the checkpoint as corrupt, not as a tail the next open would cut', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringstore-verify-'));
    try {
      const store = StorageEngine.open(dir);
      await store.put('crm', 'person', 17n, [{ type: 'Joined', data: 'first' }]);
      await store.put('crm', 'person', 18n, [{ type: 'Joined', data: 'second' }]);
      await store.put('crm', 'person', 19n, [{ type: 'Joined', data: 'third' }]);
      // Close writes a checkpoint that covers all three records: they were synced.
      await store.close();
      expect(verifyStore(dir).ok).toBe(true);

      const index = join(dir, 'crm', 'index');
      const bytes = readFileSync(index);
      // Damage in the last record looks like a torn tail, unless the checkpoint says it was synced.
      const last = findLastRecord(bytes);
      expect(last).toBeGreaterThan(0);
      bytes[last + 10]! ^= 0x01;
      writeFileSync(index, bytes);

      const report = verifyStore(dir);
      expect(report.ok).toBe(false);
      expect(report.problems).toContainEqual({
        file: 'crm/index',
        offset: last,
        reason: expect.stringContaining("below the checkpoint's end"),
        severity: 'corrupt',
      });
      expect(report.problems.filter((p) => p.severity === 'tail')).toEqual([]);

      // Zeroed, or cut off at its start: no tail to cut, but synced records are missing.
      for (const damage of ['zeroed', 'truncated'] as const) {
        const damaged = Buffer.from(bytes);
        damaged[last + 10]! ^= 0x01;
        if (damage === 'zeroed') damaged.fill(0, last);
        writeFileSync(index, damage === 'zeroed' ? damaged : damaged.subarray(0, last));
        const found = verifyStore(dir).problems;
        expect(found, damage).toContainEqual({
          file: 'crm/index',
          offset: last,
          reason: expect.stringContaining("below the checkpoint's end"),
          severity: 'corrupt',
        });
        // The lost record's payload is below the checkpoint's data end too: corrupt, not a tail.
        expect(
          found.filter((p) => p.severity === 'tail'),
          damage,
        ).toEqual([]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** The offset of the last index record, walking the records by their lengths (each one's first u32). */
function findLastRecord(bytes: Buffer): number {
  let last = 0;
  for (let at = 0; at + 4 <= bytes.length && bytes.readUInt32LE(at) > 0; at += bytes.readUInt32LE(at))
    last = at;
  return last;
}
