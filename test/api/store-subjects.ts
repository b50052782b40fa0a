import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EventStore } from '../../src/api/event-store.js';
import { RingStore } from '../../src/api/ring-store.js';
import { crc32 } from '../../src/model/crc.js';
import { MemoryEventStore } from '../../src/model/memory-store.js';
import { StorageEngine } from '../../src/storage/storage-engine.js';
import type { StoredEvent } from '../../src/types.js';
import { mulberry32 } from '../support/prng.js';

/**
 * The stores the read-side tests (streams, subscriptions, decider) run against. Each test file
 * loops over these, so every store implementation gets the same read-API tests.
 */
export interface StoreSubject {
  name: string;
  /** A fresh, empty store. `clock` is a hint: stores that stamp time elsewhere may ignore it. */
  open(options?: { clock?: () => number }): Promise<EventStore>;
  /** Removes whatever the opened stores left on disk; call after all stores are closed. */
  cleanup(): void;
}

/** Disk-backed subjects: one temp dir per opened store, removed by cleanup(). */
function onDisk(
  name: string,
  open: (dir: string, clock?: () => number) => Promise<EventStore>,
): StoreSubject {
  const dirs: string[] = [];
  return {
    name,
    open: (options) => {
      const dir = mkdtempSync(join(tmpdir(), 'ringstore-read-api-'));
      dirs.push(dir);
      return open(dir, options?.clock);
    },
    cleanup: () => {
      for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const storeSubjects: StoreSubject[] = [
  { name: 'MemoryEventStore', open: async (options) => new MemoryEventStore(options), cleanup: () => {} },
  // These tests are about the read API, not durability: skip fsync to keep them fast on a shared disk.
  onDisk('StorageEngine', async (dir, clock) => StorageEngine.open(dir, { clock, durability: 'none' })),
  // The writer thread stamps time itself, so the clock hint does not apply.
  onDisk('RingStore', (dir) => RingStore.open({ dir, durability: 'none', ringBytes: 1 << 20 })),
];

/** A seeded PRNG, so every random test can print and replay its seed. */
export const seededRandom = mulberry32;

/** A seed from the environment (TEST_SEED) or a fixed default, so a failure can be replayed. */
export function testSeed(fallback: number): number {
  const fromEnv = Number(process.env.TEST_SEED);
  return Number.isSafeInteger(fromEnv) ? fromEnv : fallback;
}

export function randomInt(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

/** Lets other tasks (writers, notices) run between steps of a test. */
export function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A clock that moves 0–2 ms per call, so time-range queries see several distinct timestamps. */
export function steppingClock(random: () => number, start = 1_700_000_000_000): () => number {
  let now = start;
  return () => {
    now += randomInt(random, 0, 2);
    return now;
  };
}

const decoder = new TextDecoder();

/** The fields that identify an event, in a form toEqual compares and a failure prints well. */
export function describeEvent(event: StoredEvent): string {
  return [
    event.domain,
    event.aggregateType,
    event.aggregateId,
    `v${event.version}`,
    `p${event.position}`,
    `g${event.generation}`,
    `t${event.timestamp}`,
    event.type,
    decoder.decode(event.data),
    event.crc,
  ].join(' ');
}

export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

export interface RandomLogOptions {
  domains: readonly string[];
  aggregateTypes: readonly string[];
  eventTypes: readonly string[];
  instancesPerType: number;
  batches: number;
  maxBatchEvents: number;
}

/**
 * Appends a seeded random log and returns every event as the put results say it must read back,
 * per domain in position order.
 */
export async function writeRandomLog(
  store: EventStore,
  random: () => number,
  options: RandomLogOptions,
): Promise<Map<string, StoredEvent[]>> {
  const logs = new Map<string, StoredEvent[]>(options.domains.map((d) => [d, []]));
  const encoder = new TextEncoder();
  for (let batch = 0; batch < options.batches; batch++) {
    const domain = options.domains[randomInt(random, 0, options.domains.length - 1)]!;
    const aggregateType = options.aggregateTypes[randomInt(random, 0, options.aggregateTypes.length - 1)]!;
    const id = BigInt(randomInt(random, 1, options.instancesPerType));
    const count = randomInt(random, 1, options.maxBatchEvents);
    const events = Array.from({ length: count }, (_, i) => ({
      type: options.eventTypes[randomInt(random, 0, options.eventTypes.length - 1)]!,
      data: encoder.encode(JSON.stringify({ batch, i })),
    }));
    const result = await store.put(domain, aggregateType, id, events);
    const log = logs.get(domain)!;
    for (const [i, event] of events.entries()) {
      log.push({
        domain,
        aggregateType,
        aggregateId: id,
        version: result.firstVersion + i,
        position: result.firstPosition + i,
        generation: result.generation,
        timestamp: result.timestamp,
        type: event.type,
        data: event.data,
        metadata: new Uint8Array(0),
        crc: crc32(event.data),
      });
    }
  }
  return logs;
}
