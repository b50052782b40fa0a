import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { eventCrc } from '../../src/model/events.js';
import { FaultInjectingFileIO } from '../../src/storage/fault-io.js';
import { StorageEngine } from '../../src/storage/storage-engine.js';
import type { AppendBatch } from '../../src/storage/types.js';
import { StorageWriter } from '../../src/storage/writer.js';

/**
 * A replica applies generations decided elsewhere (StorageWriter.append with a stamp, as the
 * writer thread's ReplicatedWriter does in cluster mode): the same
 * messages give the same positions, versions, generations and timestamps on every replica, however
 * they are interleaved with other domains and with close and reopen, and applying the last message
 * again (as a replica does when it resumes) changes nothing when its batches name exact versions.
 */
const SEED = Number(process.env.RINGSTORE_SEED ?? 20_261_202);

function batch(
  domain: string,
  id: number,
  expectedVersion: number,
  events: number,
  key?: string,
): AppendBatch {
  return {
    domain,
    aggregateType: 'acct',
    aggregateId: BigInt(id),
    expectedVersion,
    idempotencyKey: key,
    events: Array.from({ length: events }, (_, e) => {
      const data = new TextEncoder().encode(`${domain}/${id}/${expectedVersion + e + 1}`);
      const metadata = new Uint8Array(0);
      return { type: 'E', data, metadata, crc: eventCrc({ data, metadata }) };
    }),
  };
}

/** A domain's events as a store opened afterwards over the same files reads them. */
async function dump(io: FaultInjectingFileIO, dir: string, domain: string) {
  const store = StorageEngine.open(dir, { io, durability: 'none' });
  const { events } = await store.read(domain, { limit: 10_000 });
  await store.close();
  return events.map((e) => [
    e.aggregateId,
    e.version,
    e.position,
    e.generation,
    e.timestamp,
    new TextDecoder().decode(e.data),
  ]);
}

describe(`generation stamps (seed ${SEED})`, () => {
  it('replicas that apply the same messages agree, whatever else they apply and however often they reopen', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            domain: fc.constantFrom('d1', 'd2'),
            batches: fc.array(
              fc.record({ id: fc.integer({ min: 1, max: 3 }), events: fc.integer({ min: 1, max: 3 }) }),
              {
                minLength: 1,
                maxLength: 4,
              },
            ),
            timestamp: fc.integer({ min: 0, max: 2_000_000_000_000 }),
            reopen: fc.boolean(),
          }),
          { minLength: 1, maxLength: 12 },
        ),
        async (messages) => {
          const ioA = new FaultInjectingFileIO();
          const ioB = new FaultInjectingFileIO();
          const a = StorageWriter.open('/a', { io: ioA, generationBytes: 64 });
          let b = StorageWriter.open('/b', { io: ioB, generationBytes: 64 });
          const seqs = new Map<string, number>();
          const versions = new Map<string, number>();
          for (const m of messages) {
            const seq = (seqs.get(m.domain) ?? 0) + 1;
            seqs.set(m.domain, seq);
            const batches = m.batches.map((x) => {
              const k = `${m.domain}/${x.id}`;
              const v = versions.get(k) ?? 0;
              versions.set(k, v + x.events);
              return batch(m.domain, x.id, v, x.events);
            });
            const stamp = { generation: seq, timestamp: m.timestamp };
            const ra = a.append(batches, 'write', stamp);
            const rb = b.append(batches, 'fsync', stamp);
            expect(ra.outcomes.every((o) => o.ok)).toBe(true);
            expect(rb.outcomes.map((o) => (o.ok ? { ...o.result, durability: 'x' } : o))).toEqual(
              ra.outcomes.map((o) => (o.ok ? { ...o.result, durability: 'x' } : o)),
            );
            if (m.reopen) {
              b.close();
              b = StorageWriter.open('/b', { io: ioB, generationBytes: 64 });
              // A resuming replica applies the domain's last message once more: nothing changes.
              const again = b.append(batches, 'fsync', stamp);
              expect(again.outcomes.every((o) => !o.ok && o.error.code === 'VERSION_CONFLICT')).toBe(true);
              expect(again.appendedEvents).toBe(0);
            }
          }
          a.close();
          b.close();
          for (const domain of ['d1', 'd2']) {
            const onA = await dump(ioA, '/a', domain);
            expect(await dump(ioB, '/b', domain)).toEqual(onA);
            // Within a domain generations and timestamps never decrease.
            for (let i = 1; i < onA.length; i++) {
              expect(onA[i]![3]! >= onA[i - 1]![3]!).toBe(true);
              expect(onA[i]![4]! >= onA[i - 1]![4]!).toBe(true);
            }
          }
        },
      ),
      { seed: SEED, numRuns: 60 },
    );
  });

  it('refuses a stamp older than the domain has, before changing anything', async () => {
    const store = StorageWriter.open('/s', { io: new FaultInjectingFileIO() });
    store.append([batch('d', 1, 0, 1)], 'write', { generation: 5, timestamp: 10 });
    expect(() => store.append([batch('d', 1, 1, 1)], 'write', { generation: 4, timestamp: 11 })).toThrow(
      expect.objectContaining({ code: 'REPLICA_DIVERGED' }),
    );
    const next = store.append([batch('d', 1, 1, 2, 'k')], 'write', { generation: 6, timestamp: 3 });
    // A timestamp below the domain's last is raised to it (the same rule on every replica).
    expect(next.outcomes[0]).toMatchObject({
      ok: true,
      result: { firstVersion: 2, generation: 6, timestamp: 10 },
    });
    expect(store.tip('d')).toEqual({ nextPosition: 3, lastGeneration: 6, lastTimestamp: 10 });
    expect(store.keyedResult('d', 'acct', 1n, 'k')).toMatchObject({ firstVersion: 2, lastVersion: 3 });
    expect(store.version('d', 'acct', 1n)).toBe(3);
    store.close();
  });
});
