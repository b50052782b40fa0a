import { JetStreamApiError } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { versionConflict } from '../../src/errors.js';
import { eventCrc } from '../../src/model/events.js';
import {
  DomainPublisher,
  type Publishing,
  type ReplicaLink,
} from '../../src/pipeline/cluster/domain-publisher.js';
import { type Applied, DomainReplica } from '../../src/pipeline/cluster/domain-replica.js';
import { NatsNames } from '../../src/pipeline/cluster/nats-names.js';
import { eventListOf } from '../../src/storage/event-list.js';
import {
  decodeGenerationMessage,
  encodeGenerationMessage,
  type GenerationMessage,
} from '../../src/storage/generation-message.js';
import type {
  AppendBatch,
  AppendOutcome,
  AppendReport,
  GenerationApplier,
  GenerationStamp,
} from '../../src/storage/types.js';
import { reportOf } from '../fixtures/append-report.js';

/**
 * DomainPublisher without NATS: a fake JetStream whose publishes the test answers by hand, a fake
 * replica and store that apply messages as every node's store would (exact expected versions).
 * Shows the pipelining (the next message is published before the previous one is acknowledged,
 * fenced on its predecessor's sequence and message id, applied after it) and that a refused
 * message fails its batches with NOT_OWNER, stores nothing, and takes the ones after it down too.
 */
class FakeStore implements GenerationApplier {
  readonly versions = new Map<bigint, number>();
  readonly applied: number[] = [];
  position = 0;

  version(_d: string, _t: string, id: bigint): number {
    return this.versions.get(id) ?? 0;
  }

  keyedResult(): undefined {
    return undefined;
  }

  tip() {
    return { nextPosition: this.position, lastGeneration: this.applied.at(-1) ?? 0, lastTimestamp: 0 };
  }

  async applyGeneration(batches: readonly AppendBatch[], stamp: GenerationStamp): Promise<AppendReport> {
    this.applied.push(stamp.generation);
    const outcomes: AppendOutcome[] = batches.map((b) => {
      const version = this.version('d', b.aggregateType, b.aggregateId);
      if (b.expectedVersion !== version)
        return { ok: false, error: versionConflict(version, b.expectedVersion as number).toWire() };
      const count = eventListOf(b.events).length;
      this.versions.set(b.aggregateId, version + count);
      const result = {
        firstVersion: version + 1,
        lastVersion: version + count,
        firstPosition: this.position,
        generation: stamp.generation,
        timestamp: stamp.timestamp,
        durability: 'write' as const,
        replayed: false,
      };
      this.position += count;
      return { ok: true, result };
    });
    return reportOf(outcomes, stamp.generation);
  }
}

class FakeReplica implements ReplicaLink {
  readonly store: FakeStore;
  appliedSeq = 0;
  streamLast = 0;
  readonly #expected = new Map<number, { id: string; resolve: (a: Applied) => void }[]>();
  #chain: Promise<void> = Promise.resolve();

  constructor(store: FakeStore) {
    this.store = store;
  }

  async catchUp(): Promise<number> {
    return this.streamLast;
  }

  expect(seq: number, id: string): Promise<Applied> {
    return new Promise((resolve) =>
      this.#expected.set(seq, [...(this.#expected.get(seq) ?? []), { id, resolve }]),
    );
  }

  unexpect(seq: number, id: string): void {
    this.#expected.set(
      seq,
      (this.#expected.get(seq) ?? []).filter((e) => e.id !== id),
    );
  }

  apply(seq: number, bytes: Uint8Array | GenerationMessage): Promise<void> {
    const run = this.#chain.then(async () => {
      if (seq <= this.appliedSeq) return;
      if (seq !== this.appliedSeq + 1) throw new Error(`message ${seq} applied after ${this.appliedSeq}`);
      const message = bytes instanceof Uint8Array ? decodeGenerationMessage(bytes) : bytes;
      const report = await this.store.applyGeneration(message.batches, {
        generation: seq,
        timestamp: message.timestamp,
      });
      this.appliedSeq = seq;
      for (const e of this.#expected.get(seq) ?? [])
        e.resolve(e.id === message.id ? { mine: true, report } : { mine: false });
      this.#expected.delete(seq);
    });
    this.#chain = run.catch(() => undefined);
    return run;
  }
}

interface HeldPublish {
  bytes: Uint8Array;
  msgID: string;
  expect: { lastSequence: number; lastMsgID?: string };
  ack: () => void;
  refuse: () => void;
}

class FakeJetStream {
  readonly publishes: HeldPublish[] = [];

  publish: Publishing['publish'] = (_subject, payload, options) =>
    new Promise((resolve, reject) => {
      const expect = options!.expect as HeldPublish['expect'];
      this.publishes.push({
        bytes: payload as Uint8Array,
        msgID: options!.msgID!,
        expect,
        ack: () => resolve({ stream: 'S', seq: expect.lastSequence + 1, duplicate: false, domain: '' }),
        refuse: () =>
          reject(new JetStreamApiError({ code: 400, err_code: 10071, description: 'wrong last sequence' })),
      });
    });
}

const event = { type: 'E', data: new Uint8Array(1), metadata: new Uint8Array(0) };
const batch = (id: number, expectedVersion: number | 'any' = 'any'): AppendBatch => ({
  domain: 'd',
  aggregateType: 'a',
  aggregateId: BigInt(id),
  expectedVersion,
  idempotencyKey: undefined,
  events: [{ ...event, crc: eventCrc(event) }],
});

const turns = async (count = 20) => {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
};

function setup() {
  const store = new FakeStore();
  const replica = new FakeReplica(store);
  const js = new FakeJetStream();
  const publisher = new DomainPublisher(
    'd',
    store,
    replica,
    js,
    new NatsNames('t'),
    {
      node: 'n',
      maxMessageBytes: 1 << 20,
      publishTimeoutMs: 1000,
      maxInFlight: 4,
      clock: () => 1000,
    },
    0,
  );
  return { store, replica, js, publisher };
}

describe('DomainReplica expectations', () => {
  it('answers every publisher that waits on a sequence: the one whose message it is, and the others', async () => {
    const store = new FakeStore();
    const replica = new DomainReplica('d', store, {} as never, {} as never, new NatsNames('t'));
    const old = replica.expect(1, 'old');
    const current = replica.expect(1, 'new');
    const dropped = replica.expect(2, 'dropped');
    replica.unexpect(2, 'dropped');
    replica.unexpect(1, 'unknown id');
    let droppedSettled = false;
    void dropped.then(() => {
      droppedSettled = true;
    });
    await replica.apply(1, { domain: 'd', node: 'n', id: 'new', timestamp: 5, batches: [batch(1, 0)] });
    expect(await old).toEqual({ mine: false });
    expect(await current).toMatchObject({ mine: true, report: { outcomes: [{ ok: true }] } });
    await turns();
    expect(droppedSettled).toBe(false);
    replica.stop();
  });
});

describe('DomainReplica catch-up', () => {
  it('ends at once when the replica is stopped while it catches up, instead of asking again until its deadline', async () => {
    const store = new FakeStore();
    let replica: DomainReplica | undefined;
    let fetched = 0;
    const jsm = {
      streams: {
        info: async () => ({ state: { last_seq: 2 } }),
        getMessage: async () => {
          fetched++;
          replica?.stop();
          return {
            data: encodeGenerationMessage({
              domain: 'd',
              node: 'n',
              id: 'm1',
              timestamp: 5,
              batches: [batch(1, 0)],
            }),
          };
        },
      },
    };
    replica = new DomainReplica('d', store, {} as never, jsm as never, new NatsNames('t'));
    await expect(replica.catchUp(5_000)).rejects.toMatchObject({ code: 'STORE_CLOSED' });
    expect(fetched).toBe(1);
    expect(store.applied).toEqual([]);
  });
});

describe('DomainPublisher (fake JetStream)', () => {
  it('is drained once the messages it sent before stepping down are handled', async () => {
    const { store, js, publisher } = setup();
    const committed = publisher.commit([batch(1)]);
    await turns();
    expect(js.publishes).toHaveLength(1);
    publisher.stepDown('disowned');
    let drained = false;
    const draining = publisher.drained().then(() => {
      drained = true;
    });
    await turns();
    expect(drained).toBe(false);
    js.publishes[0]!.ack();
    await draining;
    expect(store.applied).toEqual([1]);
    expect((await committed)[0]).toMatchObject({ ok: true });
    // Stepped down: a later commit is refused without a publish.
    expect((await publisher.commit([batch(2)]))[0]).toMatchObject({
      ok: false,
      error: { code: 'NOT_OWNER' },
    });
    expect(js.publishes).toHaveLength(1);
  });

  it('publishes the next message before the previous one is acknowledged, and applies them in order', async () => {
    const { store, js, publisher } = setup();
    const first = publisher.commit([batch(1), batch(2)]);
    const second = publisher.commit([batch(1, 1), batch(3)]);
    await turns();
    expect(js.publishes).toHaveLength(2);
    const [p1, p2] = js.publishes;
    expect(p1!.expect).toEqual({ lastSequence: 0, streamName: 'T_d' });
    // Fenced on the first: stored only directly after it.
    expect(p2!.expect).toEqual({ lastSequence: 1, streamName: 'T_d', lastMsgID: p1!.msgID });
    // Decided counting the first message in flight: instance 1 extends version 1.
    expect(decodeGenerationMessage(p2!.bytes).batches.map((b) => b.expectedVersion)).toEqual([1, 0]);
    expect(publisher.mostInFlight).toBe(2);
    // The second is acknowledged first: it is still applied after the first.
    p2!.ack();
    await turns();
    expect(store.applied).toEqual([]);
    p1!.ack();
    const [one, two] = await Promise.all([first, second]);
    expect(store.applied).toEqual([1, 2]);
    expect(one.map((o) => o.ok && o.result.firstVersion)).toEqual([1, 1]);
    expect(two.map((o) => o.ok && [o.result.firstVersion, o.result.generation])).toEqual([
      [2, 2],
      [1, 2],
    ]);
    expect(publisher.published).toBe(2);
    expect(publisher.active).toBe(true);
  });

  it('a refused message stores nothing and fails with NOT_OWNER, and the messages published after it too', async () => {
    const { store, replica, js, publisher } = setup();
    const first = publisher.commit([batch(1)]);
    const second = publisher.commit([batch(2)]);
    await turns();
    expect(js.publishes).toHaveLength(2);
    // Another node wrote sequence 1: both are refused by JetStream.
    replica.streamLast = 1;
    js.publishes[0]!.refuse();
    js.publishes[1]!.refuse();
    const other: GenerationMessage = {
      domain: 'd',
      node: 'm',
      id: 'other',
      timestamp: 5,
      batches: [batch(9, 0)],
    };
    await replica.apply(1, other);
    const outcomes = [...(await first), ...(await second)];
    expect(outcomes.map((o) => (o.ok ? 'ok' : o.error.code))).toEqual(['NOT_OWNER', 'NOT_OWNER']);
    expect(publisher.active).toBe(false);
    expect(publisher.stopped).toBe('fenced');
    // Only the other node's message is in the store.
    expect(store.applied).toEqual([1]);
    expect([...store.versions.keys()]).toEqual([9n]);
    // Nothing more is published once it stepped down.
    const third = await publisher.commit([batch(3)]);
    expect(third[0]).toMatchObject({ ok: false, error: { code: 'NOT_OWNER' } });
    expect(js.publishes).toHaveLength(2);
  });

  it('keeps at most maxInFlight messages out', async () => {
    const { js, publisher } = setup();
    const commits = [1, 2, 3, 4, 5, 6].map((id) => publisher.commit([batch(id)]));
    await turns();
    expect(js.publishes).toHaveLength(4);
    js.publishes[0]!.ack();
    await turns();
    expect(js.publishes).toHaveLength(5);
    for (let i = 1; i < 5; i++) js.publishes[i]!.ack();
    await turns();
    js.publishes[5]!.ack();
    const outcomes = (await Promise.all(commits)).flat();
    expect(outcomes.map((o) => o.ok && o.result.generation)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(publisher.mostInFlight).toBe(4);
  });

  it('answers a version conflict found against a message in flight only once that message is applied', async () => {
    const { js, publisher } = setup();
    const first = publisher.commit([batch(1)]);
    const second = publisher.commit([batch(1, 0), batch(2)]);
    await turns();
    // Instance 2 goes out at once; the conflict on instance 1 waits for the first message.
    expect(js.publishes).toHaveLength(2);
    expect(decodeGenerationMessage(js.publishes[1]!.bytes).batches.map((b) => b.aggregateId)).toEqual([2n]);
    let answered = false;
    void second.then(() => {
      answered = true;
    });
    js.publishes[1]!.ack();
    await turns();
    expect(answered).toBe(false);
    js.publishes[0]!.ack();
    const outcomes = [...(await first), ...(await second)];
    expect(outcomes.map((o) => (o.ok ? o.result.firstVersion : o.error.code))).toEqual([
      1,
      'VERSION_CONFLICT',
      1,
    ]);
  });
});
