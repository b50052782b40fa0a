import { describe, expect, it } from 'vitest';
import { crc32 } from '../../src/crc.js';
import { EMPTY_BYTES } from '../../src/model/events.js';
import { validateGetOptions, validateReadOptions } from '../../src/model/queries.js';
import { FaultInjectingFileIO } from '../../src/storage/fault-io.js';
import { StorageReader } from '../../src/storage/reader.js';
import type { AppendBatch, AppendOutcome } from '../../src/storage/types.js';
import { StorageWriter } from '../../src/storage/writer.js';
import type { ExpectedVersion } from '../../src/types.js';

const enc = new TextEncoder();

function batch(
  id: bigint,
  texts: string[],
  options: { expectedVersion?: ExpectedVersion; key?: string; domain?: string; type?: string } = {},
): AppendBatch {
  return {
    domain: options.domain ?? 'd',
    aggregateType: 'a',
    aggregateId: id,
    expectedVersion: options.expectedVersion ?? 'any',
    idempotencyKey: options.key,
    events: texts.map((t) => {
      const data = enc.encode(t);
      return { type: options.type ?? 'E', data, metadata: EMPTY_BYTES, crc: crc32(data) };
    }),
  };
}

function ok(outcome: AppendOutcome | undefined) {
  if (!outcome?.ok) throw new Error(`expected success, got ${JSON.stringify(outcome)}`);
  return outcome.result;
}

describe('StorageWriter.append', () => {
  it('decides batch by batch: later batches see earlier ones, rejects cost no position', () => {
    const writer = StorageWriter.open('/s', { io: new FaultInjectingFileIO() });
    const report = writer.append(
      [
        batch(1n, ['a'], { expectedVersion: 0, key: 'k' }),
        batch(1n, ['b'], { expectedVersion: 0 }),
        batch(1n, ['c', 'd'], { expectedVersion: 1 }),
        batch(1n, ['a'], { key: 'k' }),
        batch(2n, ['e'], { expectedVersion: 'exists' }),
        batch(2n, ['f'], { expectedVersion: 'none' }),
      ],
      'fsync',
    );
    const [first, conflict, third, replay, exists, last] = report.outcomes;
    expect(ok(first)).toMatchObject({ firstVersion: 1, lastVersion: 1, firstPosition: 0, replayed: false });
    expect(conflict).toMatchObject({ ok: false, error: { code: 'VERSION_CONFLICT', actualVersion: 1 } });
    expect(ok(third)).toMatchObject({ firstVersion: 2, lastVersion: 3, firstPosition: 1 });
    expect(ok(replay)).toEqual({ ...ok(first), replayed: true });
    expect(exists).toMatchObject({ ok: false, error: { code: 'VERSION_CONFLICT', actualVersion: 0 } });
    expect(ok(last)).toMatchObject({ firstVersion: 1, firstPosition: 3 });
    expect(writer.version('d', 'a', 1n)).toBe(3);
    writer.close();
  });

  it('cuts generations by encoded size and stamps never-decreasing timestamps', () => {
    const clock = [100, Number.NaN, 200, -5];
    const writer = StorageWriter.open('/s', {
      io: new FaultInjectingFileIO(),
      clock: () => clock.shift() ?? 0,
      generationBytes: 200,
    });
    // Each batch: 72 + 8 index bytes + 50 data bytes = 130 encoded bytes: one per generation.
    const report = writer.append(
      [1n, 2n, 3n, 4n].map((id) => batch(id, ['x'.repeat(50)])),
      'none',
    );
    const stamps = report.outcomes.map((o) => [ok(o).generation, ok(o).timestamp]);
    expect(stamps).toEqual([
      [1, 100],
      [2, 100],
      [3, 200],
      [4, 200],
    ]);
    expect(report.delta.generation).toBe(4);
    expect(writer.generation).toBe(4);
    writer.close();
  });

  it('reports its fsyncs: one per data file and per index for a group commit, none without', () => {
    const io = new FaultInjectingFileIO();
    const writer = StorageWriter.open('/s', { io });
    writer.append([batch(1n, ['warm'])], 'fsync');
    const many = Array.from({ length: 50 }, (_, i) => batch(BigInt(i + 1), ['payload']));
    expect(writer.append(many, 'fsync')).toMatchObject({ fsyncs: 2, durability: 'fsync' });
    expect(writer.append(many, 'none')).toMatchObject({ fsyncs: 0, durability: 'write' });
    expect(writer.append([batch(1n, ['x'], { domain: 'e' })], 'fsync').fsyncs).toBeGreaterThan(2);
    writer.close();
  });

  it('hands out deltas that bring a reader opened earlier up to date, tolerating repeats and gaps', () => {
    const io = new FaultInjectingFileIO();
    const writer = StorageWriter.open('/s', { io });
    const reader = StorageReader.open('/s', { io });
    const first = writer.append([batch(1n, ['one'], { type: 'A' })], 'fsync');
    reader.apply(first.delta);
    reader.apply(first.delta);
    writer.append([batch(1n, ['two'], { type: 'B' })], 'fsync');
    const third = writer.append([batch(2n, ['three'], { type: 'C' })], 'fsync');
    reader.apply(third.delta);
    expect(reader.generation).toBe(3);
    const all = reader.read('d', validateReadOptions());
    expect(all.events.map((e) => [e.type, new TextDecoder().decode(e.data)])).toEqual([
      ['A', 'one'],
      ['B', 'two'],
      ['C', 'three'],
    ]);
    expect(reader.get('d', 'a', 1n, validateGetOptions()).version).toBe(2);
    writer.close();
    reader.close();
  });

  it('refuses a 65,536th event type with TOO_MANY_TYPES and rejects only that batch', () => {
    const writer = StorageWriter.open('/s', { io: new FaultInjectingFileIO() });
    const filler = (from: number, count: number): AppendBatch => ({
      ...batch(1n, []),
      events: Array.from({ length: count }, (_, i) => ({
        type: `T${from + i}`,
        data: new Uint8Array(0),
        metadata: EMPTY_BYTES,
        crc: 0,
      })),
    });
    for (let from = 0; from < 65_535; from += 10_000) {
      const report = writer.append([filler(from, Math.min(10_000, 65_535 - from))], 'none');
      expect(report.outcomes[0]!.ok).toBe(true);
    }
    const report = writer.append([filler(70_000, 1), batch(2n, ['fine'], { type: 'T5' })], 'none');
    expect(report.outcomes[0]).toMatchObject({ ok: false, error: { code: 'TOO_MANY_TYPES' } });
    expect(report.outcomes[1]!.ok).toBe(true);
    writer.close();
  });

  it('never turns a name outside the allowlist into a path', () => {
    const writer = StorageWriter.open('/s', { io: new FaultInjectingFileIO() });
    const report = writer.append(
      [
        batch(1n, ['x'], { domain: '../etc' }),
        { ...batch(1n, ['x']), aggregateType: 'A/../b' },
        batch(1n, ['x'], { type: '9/x' }),
        batch(1n, ['fine']),
      ],
      'none',
    );
    expect(report.outcomes.map((o) => (o.ok ? 'ok' : o.error.code))).toEqual([
      'INVALID_NAME',
      'INVALID_NAME',
      'INVALID_NAME',
      'ok',
    ]);
    writer.close();
  });

  it('rejects, per batch, values that do not fit their on-disk fields', () => {
    const writer = StorageWriter.open('/s', { io: new FaultInjectingFileIO() });
    const big = { type: 'E', data: new Uint8Array(65_536), metadata: EMPTY_BYTES, crc: 0 };
    const report = writer.append(
      [
        { ...batch(1n, ['x']), events: [] },
        { ...batch(1n, ['x']), events: [big] },
        batch(1n, ['x'], { key: 'k'.repeat(65) }),
        { ...batch(1n, ['x']), aggregateId: 0n },
        { ...batch(1n, ['x']), aggregateId: 1n << 64n },
        batch(1n, ['fine']),
      ],
      'none',
    );
    expect(report.outcomes.map((o) => (o.ok ? 'ok' : o.error.code))).toEqual([
      'INVALID_BATCH',
      'EVENT_TOO_LARGE',
      'INVALID_IDEMPOTENCY_KEY',
      'INVALID_ID',
      'INVALID_ID',
      'ok',
    ]);
    writer.close();
  });
});
