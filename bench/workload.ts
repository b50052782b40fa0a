import { crc32 } from '../src/model/crc.js';
import { EMPTY_BYTES } from '../src/model/events.js';
import type { AppendBatch, AppendEvent } from '../src/storage/types.js';
import type { BenchConfig } from './config.js';

/** The domain and aggregate type every bench case writes to. */
export const BENCH_DOMAIN = 'bench';
export const BENCH_AGGREGATE_TYPE = 'person';
/** Event types cycle through these, so a scan filtered by one type matches a quarter of the domain. */
export const EVENT_TYPES = ['Registered', 'Renamed', 'Moved', 'Closed'] as const;
/** The type the filtered domain scan asks for. */
export const SCANNED_TYPE = EVENT_TYPES[2];

/** Distinct payloads cycled through; a multiple of EVENT_TYPES.length so type and payload stay aligned. */
const PAYLOAD_POOL = 1024;

/** Small, fast, seedable PRNG (mulberry32): the same seed gives the same workload in every case. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function shuffled(count: number, random: () => number): Uint32Array {
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const swap = order[i]!;
    order[i] = order[j]!;
    order[j] = swap;
  }
  return order;
}

/** What a write case puts batches into: RingStore, or a Producer in another thread. */
export interface BatchSink {
  put(
    domain: string,
    aggregateType: string,
    id: number,
    events: { type: string; data: Uint8Array }[],
  ): Promise<unknown>;
}

/**
 * The one workload every write case replays: `events` events of `eventBytes` bytes in batches of
 * `batchEvents`, batch k going to instance order[k % instances] (a seeded shuffle, so consecutive
 * batches hit unrelated instances and every instance receives the same number of batches).
 * Payloads and their CRCs are precomputed, so building a batch costs a few object allocations and
 * no hashing: what a case measures is the store, not the generator.
 */
export class Workload {
  /** Batches measured: batches warmupBatches … warmupBatches + batchCount - 1. */
  readonly batchCount: number;
  /** Batches 0 … warmupBatches - 1 are put before measuring (BenchConfig.warmupEvents). */
  readonly warmupBatches: number;
  readonly batchBytes: number;
  readonly totalBytes: number;
  readonly #config: BenchConfig;
  readonly #instanceOrder: Uint32Array;
  readonly #appendEvents: AppendEvent[];
  readonly #typeCodes: Uint16Array;

  constructor(config: BenchConfig) {
    this.#config = config;
    this.batchCount = config.events / config.batchEvents;
    this.warmupBatches = config.warmupEvents / config.batchEvents;
    this.batchBytes = config.batchEvents * config.eventBytes;
    this.totalBytes = config.events * config.eventBytes;
    this.#instanceOrder = shuffled(config.instances, seededRandom(config.seed));
    const random = seededRandom(config.seed ^ 0x5eed);
    this.#appendEvents = [];
    this.#typeCodes = new Uint16Array(PAYLOAD_POOL);
    for (let i = 0; i < PAYLOAD_POOL; i++) {
      const data = new Uint8Array(config.eventBytes);
      for (let b = 0; b < data.length; b++) data[b] = Math.floor(random() * 256);
      const typeCode = i % EVENT_TYPES.length;
      this.#typeCodes[i] = typeCode;
      this.#appendEvents.push({
        type: EVENT_TYPES[typeCode]!,
        data,
        metadata: EMPTY_BYTES,
        crc: crc32(data),
      });
    }
  }

  /** The batch of the i-th measured put (the warm-up puts batches before it). */
  measuredBatch(i: number): number {
    return this.warmupBatches + i;
  }

  /** Instance index (0-based) of batch k. */
  instanceOf(batch: number): number {
    return this.#instanceOrder[batch % this.#config.instances]!;
  }

  /** Aggregate id of an instance index: ids start at 1 (0 is not an id). */
  idOf(instance: number): number {
    return instance + 1;
  }

  /** Version of the first event of batch k in its instance. */
  firstVersionOf(batch: number): number {
    return Math.floor(batch / this.#config.instances) * this.#config.batchEvents + 1;
  }

  /** Index into the payload pool of event j of batch k. */
  poolIndex(batch: number, event: number): number {
    return (batch * this.#config.batchEvents + event) % PAYLOAD_POOL;
  }

  /** The events of batch k with their CRCs: what the write pipeline hands the storage layer. */
  appendEvents(batch: number): AppendEvent[] {
    const events: AppendEvent[] = new Array(this.#config.batchEvents);
    for (let j = 0; j < events.length; j++) events[j] = this.#appendEvents[this.poolIndex(batch, j)]!;
    return events;
  }

  /** The events of batch k as a producer hands them to put(), without CRCs (the store computes them). */
  inputEvents(batch: number): { type: string; data: Uint8Array }[] {
    const events: { type: string; data: Uint8Array }[] = new Array(this.#config.batchEvents);
    for (let j = 0; j < events.length; j++) {
      const source = this.#appendEvents[this.poolIndex(batch, j)]!;
      events[j] = { type: source.type, data: source.data };
    }
    return events;
  }

  /** Puts batch k through a store's or a producer's put(). */
  putBatch(into: BatchSink, batch: number): Promise<unknown> {
    return into.put(
      BENCH_DOMAIN,
      BENCH_AGGREGATE_TYPE,
      this.idOf(this.instanceOf(batch)),
      this.inputEvents(batch),
    );
  }

  appendBatch(batch: number): AppendBatch {
    return {
      domain: BENCH_DOMAIN,
      aggregateType: BENCH_AGGREGATE_TYPE,
      aggregateId: BigInt(this.idOf(this.instanceOf(batch))),
      expectedVersion: 'any',
      idempotencyKey: undefined,
      events: this.appendEvents(batch),
    };
  }

  /** Payload of a pool entry, and its event type code (index into EVENT_TYPES). */
  payload(poolIndex: number): Uint8Array {
    return this.#appendEvents[poolIndex]!.data;
  }

  typeCode(poolIndex: number): number {
    return this.#typeCodes[poolIndex]!;
  }

  /** The instances the read cases read back: a seeded sample without repeats. */
  readSample(count: number): number[] {
    const order = shuffled(this.#config.instances, seededRandom(this.#config.seed ^ 0xbeef));
    return Array.from(order.subarray(0, Math.min(count, order.length)));
  }
}
