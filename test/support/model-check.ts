import fc from 'fast-check';
import { expect } from 'vitest';
import { type ConsumerOptions, consumerOf } from '../../src/api/consumer.js';
import type { EventStore } from '../../src/api/event-store.js';
import { MemoryEventStore } from '../../src/model/memory-store.js';
import type {
  ExpectedVersion,
  GetOptions,
  PutOptions,
  PutResult,
  ReadOptions,
  StoredEvent,
} from '../../src/types.js';

/**
 * A model-based property test for any EventStore: random interleavings of puts (several domains,
 * aggregate types and instances, every expectedVersion form, idempotency-key retries, payloads of
 * 0…65535 bytes, mostly small, with metadata that is absent, binary bytes or JSON text), reads (instance get with version ranges, limits and atGeneration;
 * backward gets checked against the forward read reversed; domain read with positions, type sets,
 * time ranges and atGeneration), durable consumer runs (some handlers failing part-way, whose
 * positions must survive close+reopen), clock steps and close+reopen.
 * Every result must equal MemoryEventStore's. The model mirrors each put's generation and timestamp
 * from the real result (MemoryEventStore.putSync(…, stamp)), so time and generation queries compare
 * exactly; after a final close and reopen everything is compared again. Bursts submit several puts
 * without awaiting each, so a store's group commit (several batches, one append call, shared
 * generations) is compared too.
 *
 * The store under test should take its timestamps from `options.clock` (a ManualClock) so that
 * timestamps repeat and jump in ways a wall clock would rarely produce.
 */
export class ManualClock {
  now: number;

  constructor(start = 1_700_000_000_000) {
    this.now = start;
  }

  readonly read = (): number => this.now;

  advance(ms: number): void {
    this.now += ms;
  }
}

export interface ModelCheckOptions {
  seed: number;
  numRuns: number;
  /** The clock the store under test reads; the harness advances it between operations. */
  clock?: ManualClock;
  /** Operations per run (default 60). */
  maxOps?: number;
  /**
   * Also submit several puts at once without awaiting each (default true). The store must then
   * commit them in submission order, as the model applies them.
   */
  bursts?: boolean;
  /**
   * Also read with an empty type filter, `types: []`, which matches nothing (default true). The
   * HTTP API has no way to say it (`types=` is refused), so checks through it turn this off.
   */
  emptyTypeFilters?: boolean;
  /**
   * Compare the store-wide `generation` with the model's after each step (default true). A cluster
   * store numbers generations per domain (docs/CLUSTER.md): its store-wide generation is the
   * highest of any domain, not a count of commits, so its check turns this off (each put's
   * generation is still mirrored into the model and every generation-cut read still compared).
   */
  storeGeneration?: boolean;
}

const DOMAINS = ['d1', 'd2', 'd3'] as const;
const AGGREGATE_TYPES = ['a', 'b'] as const;
const EVENT_TYPES = ['A', 'B', 'C', 'D'] as const;
const KEYS = ['k1', 'k2', 'k3'] as const;
/** Each consumer name follows one domain. */
const CONSUMERS = { c1: 'd1', c2: 'd2' } as const;
type ConsumerName = keyof typeof CONSUMERS;

type ExpectedForm = 'any' | 'none' | 'exists' | 'current' | 'stale' | 'ahead' | 'omit';

interface PutOp {
  kind: 'put';
  domain: string;
  aggregateType: string;
  id: bigint;
  events: { type: string; size: number; fill: number; metadata: MetadataSpec }[];
  expected: ExpectedForm;
  key: string | undefined;
}
interface RetryOp {
  kind: 'retry';
  which: number;
}
interface GetOp {
  kind: 'get';
  direction: 'forward' | 'backward' | undefined;
  domain: string;
  aggregateType: string;
  id: bigint;
  fromVersion: number | undefined;
  toVersion: number | undefined;
  limit: number | undefined;
  generationBack: number | undefined;
}
interface ReadOp {
  kind: 'read';
  domain: string;
  fromPosition: number | undefined;
  limit: number | undefined;
  types: string[] | undefined;
  fromTimeBack: number | undefined;
  toTimeBack: number | undefined;
  generationBack: number | undefined;
}
interface ClockOp {
  kind: 'clock';
  ms: number;
}
interface ReopenOp {
  kind: 'reopen';
}
interface BurstOp {
  kind: 'burst';
  puts: PutOp[];
}
/**
 * A durable consumer run to the end of its domain (endWhenCaughtUp), its handler throwing at the
 * `failAt`-th event it is handed (when there is one), on the store and on the model alike.
 */
interface ConsumeOp {
  kind: 'consume';
  name: ConsumerName;
  types: string[] | undefined;
  failAt: number | undefined;
  checkpointEvery: number;
  pageSize: number;
}
type Op = PutOp | RetryOp | GetOp | ReadOp | ClockOp | ReopenOp | BurstOp | ConsumeOp;

/** An event's metadata: none, binary bytes, or JSON text (given as a string, stored as UTF-8). */
type MetadataSpec =
  | { kind: 'none' }
  | { kind: 'binary'; size: number; fill: number }
  | { kind: 'json'; correlation: number; causation: number };

const payloadSize = fc.oneof(
  { weight: 12, arbitrary: fc.integer({ min: 0, max: 64 }) },
  { weight: 4, arbitrary: fc.integer({ min: 65, max: 2000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 2001, max: 65_535 }) },
  { weight: 1, arbitrary: fc.constant(65_535) },
);

const metadataSpec: fc.Arbitrary<MetadataSpec> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: 'none' as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('binary' as const),
      size: fc.oneof(
        { weight: 12, arbitrary: fc.integer({ min: 0, max: 64 }) },
        { weight: 3, arbitrary: fc.integer({ min: 65, max: 2000 }) },
        { weight: 1, arbitrary: fc.constant(65_535) },
      ),
      fill: fc.integer({ min: 0, max: 255 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('json' as const),
      correlation: fc.nat(),
      causation: fc.nat(),
    }),
  },
);

const putOp: fc.Arbitrary<PutOp> = fc.record({
  kind: fc.constant('put' as const),
  domain: fc.constantFrom(...DOMAINS),
  aggregateType: fc.constantFrom(...AGGREGATE_TYPES),
  id: fc.bigInt({ min: 1n, max: 4n }),
  events: fc.array(
    fc.record({
      type: fc.constantFrom(...EVENT_TYPES),
      size: payloadSize,
      fill: fc.integer({ min: 0, max: 255 }),
      metadata: metadataSpec,
    }),
    { minLength: 1, maxLength: 4 },
  ),
  expected: fc.constantFrom<ExpectedForm>('any', 'none', 'exists', 'current', 'stale', 'ahead', 'omit'),
  key: fc.option(fc.constantFrom(...KEYS), { nil: undefined, freq: 3 }),
});

const smallOption = (max: number) => fc.option(fc.integer({ min: 0, max }), { nil: undefined });

/** `minTypes`: fewest event types in a read's type filter when it has one (0: `[]`, match nothing). */
const opArbitrary = (minTypes: number): fc.Arbitrary<Op> =>
  fc.oneof(
    { weight: 10, arbitrary: putOp },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('retry' as const), which: fc.nat() }) },
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('get' as const),
        direction: fc.constantFrom(undefined, 'forward' as const, 'backward' as const),
        domain: fc.constantFrom(...DOMAINS),
        aggregateType: fc.constantFrom(...AGGREGATE_TYPES),
        id: fc.bigInt({ min: 1n, max: 4n }),
        fromVersion: smallOption(8),
        toVersion: smallOption(10),
        limit: smallOption(6),
        generationBack: smallOption(6),
      }),
    },
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('read' as const),
        domain: fc.constantFrom(...DOMAINS),
        fromPosition: smallOption(20),
        limit: smallOption(8),
        types: fc.option(fc.subarray([...EVENT_TYPES, 'Unknown'], { minLength: minTypes }), {
          nil: undefined,
        }),
        fromTimeBack: smallOption(12),
        toTimeBack: smallOption(12),
        generationBack: smallOption(6),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({ kind: fc.constant('clock' as const), ms: fc.integer({ min: 0, max: 4 }) }),
    },
    { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('consume' as const),
        name: fc.constantFrom<ConsumerName>('c1', 'c2'),
        types: fc.option(fc.subarray([...EVENT_TYPES, 'Unknown'], { minLength: 1 }), { nil: undefined }),
        failAt: fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined }),
        checkpointEvery: fc.integer({ min: 1, max: 4 }),
        pageSize: fc.integer({ min: 1, max: 5 }),
      }),
    },
  );

const burstOp: fc.Arbitrary<BurstOp> = fc.record({
  kind: fc.constant('burst' as const),
  puts: fc.array(putOp, { minLength: 2, maxLength: 5 }),
});

function payload(size: number, fill: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (fill + i * 31) & 255;
  return bytes;
}

function metadataOf(spec: MetadataSpec): Uint8Array | string | undefined {
  if (spec.kind === 'none') return undefined;
  if (spec.kind === 'binary') return payload(spec.size, spec.fill);
  return JSON.stringify({ correlationId: `c-${spec.correlation}`, causationId: `k-${spec.causation}` });
}

async function outcome<T>(
  promise: Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    return { ok: false, error };
  }
}

function errorShape(error: unknown): Record<string, unknown> {
  const err = error as { code?: unknown; details?: Record<string, unknown> };
  return { code: err.code, actualVersion: err.details?.actualVersion };
}

/** Payloads as base64 text: deep-equality on large Uint8Arrays is slow, string equality is not. */
function comparable<T extends { events: StoredEvent[] }>(
  result: T,
): Omit<T, 'events'> & { events: unknown[] } {
  return {
    ...result,
    events: result.events.map((e) => ({
      ...e,
      data: Buffer.from(e.data).toString('base64'),
      metadata: Buffer.from(e.metadata).toString('base64'),
    })),
  };
}

function withoutDurability(result: PutResult): Omit<PutResult, 'durability'> {
  const { durability: _ignored, ...rest } = result;
  return rest;
}

class Run {
  store: EventStore;
  readonly model = new MemoryEventStore();
  readonly puts: PutOp[] = [];
  timestamps: number[] = [];
  readonly #reopen: (store: EventStore) => Promise<EventStore>;
  readonly #clock: ManualClock | undefined;
  readonly #storeGeneration: boolean;

  constructor(
    store: EventStore,
    reopen: (store: EventStore) => Promise<EventStore>,
    options: ModelCheckOptions,
  ) {
    this.store = store;
    this.#reopen = reopen;
    this.#clock = options.clock;
    this.#storeGeneration = options.storeGeneration !== false;
  }

  #expectGeneration(): void {
    if (this.#storeGeneration) expect(this.store.generation).toBe(this.model.generation);
  }

  async step(op: Op): Promise<void> {
    switch (op.kind) {
      case 'put':
        this.puts.push(op);
        return this.put(op);
      case 'burst':
        this.puts.push(...op.puts);
        return this.put(...op.puts);
      case 'retry': {
        const earlier = this.puts.filter((p) => p.key !== undefined);
        if (earlier.length === 0) return;
        return this.put(earlier[op.which % earlier.length]!);
      }
      case 'get':
        return this.get(op);
      case 'read':
        return this.read(op);
      case 'clock':
        this.#clock?.advance(op.ms);
        return;
      case 'reopen':
        this.store = await this.#reopen(this.store);
        return this.compareAll();
      case 'consume':
        return this.consume(op);
    }
  }

  /**
   * Runs the consumer on the store and on the model: both must hand out the same events, end the
   * same way and store the same position. And both must do what a consumer promises, checked
   * from the model's log: every matching event after the stored position, in order, up to the
   * failing one; then the position is the log's end, or lies between the last handled event and
   * the failed one (which the next run hands out first).
   */
  async consume(op: ConsumeOp): Promise<void> {
    const domain = CONSUMERS[op.name];
    const start = (await consumerOf(this.model, op.name, { domain }).position()).nextPosition;
    const options: ReadOptions = { fromPosition: start, limit: 100_000 };
    if (op.types !== undefined) options.types = op.types;
    const matching = (await this.model.read(domain, options)).events;
    const failAt = op.failAt !== undefined && op.failAt < matching.length ? op.failAt : undefined;
    const real = await runConsumer(this.store, domain, op);
    const expected = await runConsumer(this.model, domain, op);
    expect(comparable({ events: real.handed })).toEqual(comparable({ events: expected.handed }));
    expect(real.outcome).toEqual(expected.outcome);
    const position = await consumerOf(this.store, op.name, { domain }).position();
    expect(position).toEqual(await consumerOf(this.model, op.name, { domain }).position());
    const handed = matching.slice(0, failAt === undefined ? undefined : failAt + 1);
    expect(real.handed.map((e) => e.position)).toEqual(handed.map((e) => e.position));
    if (failAt === undefined) {
      const end = (await this.model.read(domain, { limit: 100_000 })).nextPosition;
      expect(real.outcome).toEqual({ ok: true, endReason: 'caught-up', nextPosition: end });
      expect(position.nextPosition).toBe(end);
    } else {
      const failed = matching[failAt]!;
      const lowest = failAt === 0 ? start : matching[failAt - 1]!.position + 1;
      expect(real.outcome).toEqual({ ok: false, message: `handler failed at ${failed.position}` });
      expect(position.nextPosition).toBeGreaterThanOrEqual(lowest);
      expect(position.nextPosition).toBeLessThanOrEqual(failed.position);
    }
    this.#expectGeneration();
  }

  /** Options for a put as the model stands now (so a burst's puts all see the same state). */
  async putOptions(op: PutOp): Promise<PutOptions> {
    const current = (await this.model.get(op.domain, op.aggregateType, op.id)).version;
    const forms: Record<ExpectedForm, ExpectedVersion | undefined> = {
      any: 'any',
      none: 'none',
      exists: 'exists',
      current,
      stale: Math.max(0, current - 1),
      ahead: current + 1,
      omit: undefined,
    };
    const options: PutOptions = {};
    if (forms[op.expected] !== undefined) options.expectedVersion = forms[op.expected]!;
    if (op.key !== undefined) options.idempotencyKey = op.key;
    return options;
  }

  /**
   * Submits the puts concurrently (a burst: a store may commit them in one group), then applies
   * them to the model in submission order with the stamps the store gave them.
   */
  async put(...ops: PutOp[]): Promise<void> {
    const prepared = [];
    for (const op of ops) {
      const events = op.events.map((e) => {
        const metadata = metadataOf(e.metadata);
        const data = payload(e.size, e.fill);
        return metadata === undefined ? { type: e.type, data } : { type: e.type, data, metadata };
      });
      prepared.push({ op, events, options: await this.putOptions(op) });
    }
    const reals = await Promise.all(
      prepared.map(({ op, events, options }) =>
        outcome(this.store.put(op.domain, op.aggregateType, op.id, events, options)),
      ),
    );
    for (const [i, { op, events, options }] of prepared.entries()) {
      const real = reals[i]!;
      let expected: { ok: true; value: PutResult } | { ok: false; error: unknown };
      try {
        const stamp = real.ok
          ? { generation: real.value.generation, timestamp: real.value.timestamp }
          : undefined;
        expected = {
          ok: true,
          value: this.model.putSync(op.domain, op.aggregateType, op.id, events, options, stamp),
        };
      } catch (error) {
        expected = { ok: false, error };
      }
      if (real.ok && expected.ok) {
        expect(withoutDurability(real.value)).toEqual(withoutDurability(expected.value));
        this.timestamps.push(real.value.timestamp);
      } else if (!real.ok && !expected.ok) {
        expect(errorShape(real.error)).toEqual(errorShape(expected.error));
      } else {
        expect.fail(
          `put outcomes differ: store ${real.ok ? 'succeeded' : `failed (${String(real.error)})`}, model ${expected.ok ? 'succeeded' : `failed (${String(expected.error)})`}`,
        );
      }
    }
    this.#expectGeneration();
  }

  atGeneration(back: number | undefined): number | undefined {
    return back === undefined ? undefined : Math.max(0, this.model.generation - back);
  }

  async get(op: GetOp): Promise<void> {
    const options: GetOptions = {};
    if (op.direction !== undefined) options.direction = op.direction;
    if (op.fromVersion !== undefined) options.fromVersion = op.fromVersion;
    if (op.toVersion !== undefined) options.toVersion = op.toVersion;
    if (op.limit !== undefined) options.limit = op.limit;
    const at = this.atGeneration(op.generationBack);
    if (at !== undefined) options.atGeneration = at;
    const expected = await this.model.get(op.domain, op.aggregateType, op.id, options);
    if (op.direction === 'backward') {
      expect(comparable(expected)).toEqual(comparable(await this.backwardOracle(op, options)));
    }
    const real = await this.store.get(op.domain, op.aggregateType, op.id, { ...options, verifyCrc: true });
    expect(comparable(real)).toEqual(comparable(expected));
  }

  /**
   * A backward get as the definition says, from the model's forward read of the whole instance:
   * versions from `fromVersion` (default the version) down to `toVersion` (default 1), at most
   * `limit` of them, in descending order.
   */
  async backwardOracle(op: GetOp, options: GetOptions): Promise<{ version: number; events: StoredEvent[] }> {
    const at = options.atGeneration === undefined ? {} : { atGeneration: options.atGeneration };
    const all = await this.model.get(op.domain, op.aggregateType, op.id, at);
    const top = op.fromVersion ?? Number.POSITIVE_INFINITY;
    const bottom = op.toVersion ?? 1;
    const events = all.events
      .filter((e) => e.version <= top && e.version >= bottom)
      .reverse()
      .slice(0, op.limit ?? Number.POSITIVE_INFINITY);
    return { version: all.version, events };
  }

  async read(op: ReadOp): Promise<void> {
    const options: ReadOptions = {};
    if (op.fromPosition !== undefined) options.fromPosition = op.fromPosition;
    if (op.limit !== undefined) options.limit = op.limit;
    if (op.types !== undefined) options.types = op.types;
    const latest = this.timestamps.at(-1) ?? 1_700_000_000_000;
    if (op.fromTimeBack !== undefined) options.fromTime = Math.max(0, latest - op.fromTimeBack);
    if (op.toTimeBack !== undefined) options.toTime = Math.max(0, latest - op.toTimeBack);
    const at = this.atGeneration(op.generationBack);
    if (at !== undefined) options.atGeneration = at;
    const real = await this.store.read(op.domain, { ...options, verifyCrc: true });
    const expected = await this.model.read(op.domain, options);
    expect(comparable(real)).toEqual(comparable(expected));
  }

  /** Everything the model holds, read back in full from the store. */
  async compareAll(): Promise<void> {
    expect(this.store.domains()).toEqual(this.model.domains());
    this.#expectGeneration();
    for (const [name, domain] of Object.entries(CONSUMERS)) {
      expect(await consumerOf(this.store, name, { domain }).position()).toEqual(
        await consumerOf(this.model, name, { domain }).position(),
      );
    }
    for (const domain of DOMAINS) {
      expect(this.store.hasDomain(domain)).toBe(this.model.hasDomain(domain));
      expect(comparable(await this.store.read(domain, { limit: 100_000, verifyCrc: true }))).toEqual(
        comparable(await this.model.read(domain, { limit: 100_000 })),
      );
      for (const aggregateType of AGGREGATE_TYPES) {
        for (let id = 1n; id <= 4n; id++) {
          const forward = await this.model.get(domain, aggregateType, id);
          expect(comparable(await this.store.get(domain, aggregateType, id, { verifyCrc: true }))).toEqual(
            comparable(forward),
          );
          // Backward from the end is the forward read reversed.
          const reversed = { version: forward.version, events: [...forward.events].reverse() };
          const backward = await this.store.get(domain, aggregateType, id, { direction: 'backward' });
          expect(comparable(backward)).toEqual(comparable(reversed));
        }
      }
    }
  }
}

/** One consumer run (see ConsumeOp): the events handed out and how the run ended. */
async function runConsumer(
  store: EventStore,
  domain: string,
  op: ConsumeOp,
): Promise<{ handed: StoredEvent[]; outcome: Record<string, unknown> }> {
  const options: ConsumerOptions = {
    domain,
    endWhenCaughtUp: true,
    checkpointEvery: op.checkpointEvery,
    pageSize: op.pageSize,
  };
  if (op.types !== undefined) options.types = op.types;
  const handed: StoredEvent[] = [];
  const run = consumerOf(store, op.name, options).run((event) => {
    handed.push(event);
    if (handed.length - 1 === op.failAt) throw new Error(`handler failed at ${event.position}`);
  });
  const result = await outcome(run);
  return {
    handed,
    outcome: result.ok
      ? { ok: true, endReason: result.value.endReason, nextPosition: result.value.nextPosition }
      : { ok: false, message: (result.error as Error).message },
  };
}

export async function runModelCheck(
  open: () => Promise<EventStore>,
  reopen: (store: EventStore) => Promise<EventStore>,
  options: ModelCheckOptions,
): Promise<void> {
  const ops = opArbitrary(options.emptyTypeFilters === false ? 1 : 0);
  const property = fc.asyncProperty(
    fc.array(
      options.bursts === false
        ? ops
        : fc.oneof({ weight: 8, arbitrary: ops }, { weight: 1, arbitrary: burstOp }),
      {
        minLength: 1,
        maxLength: options.maxOps ?? 60,
        size: 'max',
      },
    ),
    async (ops) => {
      const run = new Run(await open(), reopen, options);
      try {
        for (const op of ops) await run.step(op);
        await run.compareAll();
        run.store = await reopen(run.store);
        await run.compareAll();
      } finally {
        await run.store.close();
      }
    },
  );
  try {
    await fc.assert(property, { seed: options.seed, numRuns: options.numRuns });
  } catch (err) {
    console.error(`model check failed with seed ${options.seed}`);
    throw err;
  }
}
