import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { consumerOf } from '../../src/api/consumer.js';
import { CONSUMER_POSITIONS_DOMAIN } from '../../src/api/consumer-positions.js';
import type { EventStore } from '../../src/api/event-store.js';
import { logEnd } from '../../src/api/log-end.js';
import { subscribe } from '../../src/api/subscription.js';
import { crc32 } from '../../src/model/crc.js';
import type { GetOptions, StoredEvent } from '../../src/types.js';

/**
 * The contract every store keeps (MemoryEventStore, StorageEngine, RingStore, the HTTP client).
 * `open` makes a fresh, empty store; `reopen`, when given, closes and reopens it on the same data.
 */
export interface ContractSubject {
  open(): Promise<EventStore>;
  reopen?(store: EventStore): Promise<EventStore>;
  /**
   * The store reads instances backward (default true). StorageEngine's reader takes forward ranges
   * only: it must refuse a backward read with INVALID_QUERY, never answer it forward.
   */
}

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

async function expectCode(promise: Promise<unknown>, code: string): Promise<Record<string, unknown>> {
  try {
    await promise;
  } catch (err) {
    expect((err as { code?: string }).code).toBe(code);
    return err as Record<string, unknown>;
  }
  throw new Error(`expected a ${code} error`);
}

export function eventStoreContract(name: string, subject: ContractSubject): void {
  describe(`${name}: EventStore contract`, () => {
    let store: EventStore;
    beforeEach(async () => {
      store = await subject.open();
    });
    afterEach(async () => {
      await store.close();
    });

    it('appends a batch and reads it back with versions, positions and CRCs', async () => {
      const id = store.newKey();
      const result = await store.put('billing', 'invoice', id, [
        { type: 'Opened', data: bytes('{"n":1}') },
        { type: 'Paid', data: new Uint8Array([0, 255, 7]) },
      ]);
      expect(result).toMatchObject({ firstVersion: 1, lastVersion: 2, firstPosition: 0, replayed: false });
      expect(result.generation).toBeGreaterThanOrEqual(1);
      const { version, events } = await store.get('billing', 'invoice', id);
      expect(version).toBe(2);
      expect(events.map((e) => [e.type, e.version, e.position, e.aggregateId])).toEqual([
        ['Opened', 1, 0, id],
        ['Paid', 2, 1, id],
      ]);
      expect(text(events[0]!.data)).toBe('{"n":1}');
      expect([...events[1]!.data]).toEqual([0, 255, 7]);
      expect(events[1]!.crc).toBe(crc32(new Uint8Array([0, 255, 7])));
      expect(events[0]!.timestamp).toBe(result.timestamp);
      expect(events[0]).toMatchObject({
        domain: 'billing',
        aggregateType: 'invoice',
        generation: result.generation,
      });
    });

    it('accepts empty and maximal payloads', async () => {
      const big = new Uint8Array(65_535).map((_, i) => i * 7);
      await store.put('d', 'a', 1n, [{ type: 'Empty' }, { type: 'Big', data: big }]);
      const { events } = await store.get('d', 'a', 1n);
      expect(events[0]!.data.byteLength).toBe(0);
      expect(events[1]!.data).toEqual(big);
    });

    it('enforces every expectedVersion form', async () => {
      await expectCode(
        store.put('d', 'a', 5n, [{ type: 'X' }], { expectedVersion: 'exists' }),
        'VERSION_CONFLICT',
      );
      await store.put('d', 'a', 5n, [{ type: 'X' }], { expectedVersion: 'none' });
      const err = await expectCode(
        store.put('d', 'a', 5n, [{ type: 'X' }], { expectedVersion: 0 }),
        'VERSION_CONFLICT',
      );
      expect((err.details as Record<string, unknown> | undefined)?.actualVersion ?? err.actualVersion).toBe(
        1,
      );
      await store.put('d', 'a', 5n, [{ type: 'X' }], { expectedVersion: 1 });
      await store.put('d', 'a', 5n, [{ type: 'X' }], { expectedVersion: 'exists' });
      await store.put('d', 'a', 5n, [{ type: 'X' }, { type: 'Y' }], { expectedVersion: 'any' });
      await expectCode(store.put('d', 'a', 5n, [{ type: 'X' }], { expectedVersion: 3 }), 'VERSION_CONFLICT');
      expect((await store.get('d', 'a', 5n)).version).toBe(5);
    });

    it('replays an idempotent put without appending', async () => {
      const first = await store.put('d', 'a', 9n, [{ type: 'X', data: 'one' }], { idempotencyKey: 'k-1' });
      const again = await store.put('d', 'a', 9n, [{ type: 'X', data: 'one' }], { idempotencyKey: 'k-1' });
      expect(again).toMatchObject({ ...first, replayed: true, durability: again.durability });
      expect((await store.get('d', 'a', 9n)).version).toBe(1);
      const other = await store.put('d', 'a', 10n, [{ type: 'X' }], { idempotencyKey: 'k-1' });
      expect(other.replayed).toBe(false);
    });

    it('rejects bad input with stable codes and stores nothing', async () => {
      await expectCode(store.put('Bad', 'a', 1n, [{ type: 'X' }]), 'INVALID_NAME');
      await expectCode(store.put('d', '../x', 1n, [{ type: 'X' }]), 'INVALID_NAME');
      await expectCode(store.put('d', 'a', 0n, [{ type: 'X' }]), 'INVALID_ID');
      await expectCode(store.put('d', 'a', 1n, []), 'INVALID_BATCH');
      await expectCode(store.put('d', 'a', 1n, [{ type: '9' }]), 'INVALID_NAME');
      await expectCode(
        store.put('d', 'a', 1n, [{ type: 'X', data: new Uint8Array(65_536) }]),
        'EVENT_TOO_LARGE',
      );
      await expectCode(store.put('d', 'a', 1n, [{ type: 'X', data: 'abc', crc: 1 }]), 'CRC_MISMATCH');
      await expectCode(store.put('d', 'a', 1n, [{ type: 'X' }], { expectedVersion: -1 }), 'INVALID_VERSION');
      expect((await store.get('d', 'a', 1n)).version).toBe(0);
      expect(store.hasDomain('d')).toBe(false);
    });

    it('accepts a correct producer-supplied CRC', async () => {
      const data = bytes('checked');
      await store.put('d', 'a', 1n, [{ type: 'X', data, crc: crc32(data) }]);
      expect((await store.get('d', 'a', 1n)).events[0]!.crc).toBe(crc32(data));
    });

    it('stores JSON and binary metadata beside the data and returns it from get and read', async () => {
      const id = store.newKey();
      const json = '{"correlationId":"c-1","causationId":"k-0","eventId":"e-1"}';
      const binary = new Uint8Array([0, 255, 1, 2, 0x80]);
      const result = await store.put('billing', 'invoice', id, [
        { type: 'Opened', data: '{"n":1}', metadata: json },
        { type: 'Scanned', data: new Uint8Array([9, 8]), metadata: binary },
        { type: 'Paid', data: '{"n":2}' },
        { type: 'Noted', metadata: bytes('{"eventId":"e-4"}') },
      ]);
      const expected = [
        ['Opened', '{"n":1}', json],
        ['Scanned', '\t\b', binary],
        ['Paid', '{"n":2}', new Uint8Array(0)],
        ['Noted', '', bytes('{"eventId":"e-4"}')],
      ] as const;
      const shape = (events: StoredEvent[]) =>
        events.map((e) => [e.type, hex(e.data), hex(e.metadata), e.crc, e.version, e.position]);
      const want = expected.map(([type, data, metadata], i) => {
        const dataBytes = bytes(data);
        const metadataBytes = typeof metadata === 'string' ? bytes(metadata) : metadata;
        const crc = crc32(metadataBytes, crc32(dataBytes));
        return [type, hex(dataBytes), hex(metadataBytes), crc, i + 1, result.firstPosition + i];
      });
      const got = await store.get('billing', 'invoice', id);
      expect(shape(got.events)).toEqual(want);
      expect(shape((await store.read('billing')).events)).toEqual(want);
      expect(shape((await store.get('billing', 'invoice', id, { verifyCrc: true })).events)).toEqual(want);
      expect(got.events[2]!.metadata).toBeInstanceOf(Uint8Array);
      expect(got.events[2]!.metadata.byteLength).toBe(0);
      // What a reader gets is its own copy: changing it changes nothing stored.
      got.events[0]!.metadata.fill(0);
      expect(text((await store.get('billing', 'invoice', id)).events[0]!.metadata)).toBe(json);
    });

    it('accepts maximal metadata and data together', async () => {
      const data = new Uint8Array(65_535).map((_, i) => i * 3);
      const metadata = new Uint8Array(65_535).map((_, i) => i * 5 + 1);
      await store.put('d', 'a', 1n, [{ type: 'Big', data, metadata, crc: crc32(metadata, crc32(data)) }]);
      const [event] = (await store.get('d', 'a', 1n)).events;
      expect(hex(event!.data)).toBe(hex(data));
      expect(hex(event!.metadata)).toBe(hex(metadata));
      expect(event!.crc).toBe(crc32(metadata, crc32(data)));
    });

    it('checks a supplied CRC over data followed by metadata and stores nothing on a mismatch', async () => {
      const data = bytes('{"amount":10}');
      const metadata = bytes('{"correlationId":"c-9"}');
      await expectCode(
        store.put('d', 'a', 1n, [{ type: 'X' }, { type: 'X', data, metadata, crc: crc32(data) }]),
        'CRC_MISMATCH',
      );
      expect((await store.get('d', 'a', 1n)).version).toBe(0);
      expect(store.hasDomain('d')).toBe(false);
      const joined = bytes('{"amount":10}{"correlationId":"c-9"}');
      await store.put('d', 'a', 1n, [{ type: 'X', data, metadata, crc: crc32(joined) }]);
      expect((await store.get('d', 'a', 1n)).events[0]!.crc).toBe(crc32(joined));
    });

    it('rejects over-limit or mistyped metadata with stable codes and stores nothing', async () => {
      const err = await expectCode(
        store.put('d', 'a', 1n, [{ type: 'X' }, { type: 'X', metadata: new Uint8Array(65_536) }]),
        'EVENT_TOO_LARGE',
      );
      expect(String(err.message)).toMatch(/metadata/);
      await expectCode(
        store.put('d', 'a', 1n, [{ type: 'X', metadata: 42 as unknown as string }]),
        'INVALID_EVENT',
      );
      expect((await store.get('d', 'a', 1n)).version).toBe(0);
      expect(store.hasDomain('d')).toBe(false);
    });

    it('reads the domain log in commit order with positions, types, limits and version ranges', async () => {
      await store.put('d', 'a', 1n, [{ type: 'A' }, { type: 'B' }]);
      await store.put('d', 'b', 2n, [{ type: 'B' }]);
      await store.put('d', 'a', 1n, [{ type: 'C' }]);
      await store.put('other', 'a', 1n, [{ type: 'A' }]);
      const all = await store.read('d');
      expect(all.events.map((e) => [e.position, e.type, e.aggregateType])).toEqual([
        [0, 'A', 'a'],
        [1, 'B', 'a'],
        [2, 'B', 'b'],
        [3, 'C', 'a'],
      ]);
      expect(all.nextPosition).toBe(4);
      const page = await store.read('d', { fromPosition: 1, limit: 2 });
      expect(page.events.map((e) => e.position)).toEqual([1, 2]);
      expect(page.nextPosition).toBe(3);
      const onlyB = await store.read('d', { types: ['B', 'Nope'] });
      expect(onlyB.events.map((e) => e.position)).toEqual([1, 2]);
      const range = await store.get('d', 'a', 1n, { fromVersion: 2, toVersion: 3, limit: 1 });
      expect(range).toMatchObject({ version: 3 });
      expect(range.events.map((e) => e.version)).toEqual([2]);
      expect(store.domains()).toEqual(['d', 'other']);
    });

    it('reads an instance backward: from the end or a version, down to toVersion, with limits and cuts', async () => {
      const id = store.newKey();
      const first = await store.put('d', 'a', id, [{ type: 'A' }, { type: 'B' }, { type: 'C' }]);
      await store.put('d', 'other', id, [{ type: 'X' }]);
      await store.put('d', 'a', id, [{ type: 'D' }, { type: 'E' }]);
      const versions = async (options: GetOptions) => {
        const { version, events } = await store.get('d', 'a', id, options);
        return [version, events.map((e) => e.version)];
      };
      expect(await versions({ direction: 'backward' })).toEqual([5, [5, 4, 3, 2, 1]]);
      expect(await versions({ direction: 'backward', limit: 2 })).toEqual([5, [5, 4]]);
      expect(await versions({ direction: 'backward', fromVersion: 3 })).toEqual([5, [3, 2, 1]]);
      expect(await versions({ direction: 'backward', fromVersion: 9, limit: 1 })).toEqual([5, [5]]);
      expect(await versions({ direction: 'backward', fromVersion: 4, toVersion: 3 })).toEqual([5, [4, 3]]);
      expect(await versions({ direction: 'backward', fromVersion: 0 })).toEqual([5, []]);
      expect(await versions({ direction: 'backward', toVersion: 6 })).toEqual([5, []]);
      expect(await versions({ direction: 'backward', limit: 0 })).toEqual([5, []]);
      expect(await versions({ direction: 'backward', atGeneration: first.generation })).toEqual([
        3,
        [3, 2, 1],
      ]);
      expect(await versions({ direction: 'forward', fromVersion: 4 })).toEqual([5, [4, 5]]);
      const { events } = await store.get('d', 'a', id, {
        direction: 'backward',
        limit: 1,
        verifyCrc: true,
      });
      expect(events[0]).toMatchObject({ type: 'E', version: 5, position: 5, aggregateType: 'a' });
      expect(await store.get('fresh', 'a', 1n, { direction: 'backward' })).toEqual({
        version: 0,
        events: [],
      });
      const err = await expectCode(
        store.get('d', 'a', id, { direction: 'down' as unknown as 'backward' }),
        'INVALID_QUERY',
      );
      expect((err.details as Record<string, unknown>).option).toBe('direction');
    });

    it("logEnd is the position after a domain's last event, and a subscription from 'end' sees only new events", async () => {
      expect(await logEnd(store, 'd')).toBe(0);
      await store.put('d', 'a', 1n, [{ type: 'A' }, { type: 'B' }]);
      await store.put('d', 'b', 2n, [{ type: 'C' }]);
      await store.put('other', 'a', 1n, [{ type: 'A' }]);
      expect(await logEnd(store, 'd')).toBe(3);
      expect(await logEnd(store, 'other')).toBe(1);
      const live = subscribe(store, 'd', { fromPosition: 'end', idleCheckMs: 20 });
      const first = live.next();
      await store.put('d', 'a', 1n, [{ type: 'D' }]);
      const { value } = await first;
      expect([value?.type, value?.position, live.nextPosition]).toEqual(['D', 3, 4]);
      await live.close();
    });

    it('a durable consumer stores its position, resumes from it, and hands a failed event out again', async () => {
      for (let i = 1; i <= 5; i++) await store.put('d', 'a', BigInt(i), [{ type: i === 3 ? 'Skip' : 'Do' }]);
      const seen: number[] = [];
      const options = { domain: 'd', types: ['Do'], endWhenCaughtUp: true, checkpointEvery: 1 };
      const failing = consumerOf(store, 'worker', options);
      await expect(
        failing.run((event) => {
          if (event.position === 3) throw new Error('handler failed');
          seen.push(event.position);
        }),
      ).rejects.toThrow('handler failed');
      // Positions 0 and 1 were handled (2 is of another type): the next run starts at 3 or before.
      expect(seen).toEqual([0, 1]);
      const stopped = await failing.position();
      expect(stopped.nextPosition).toBeGreaterThanOrEqual(2);
      expect(stopped.nextPosition).toBeLessThanOrEqual(3);
      const again = consumerOf(store, 'worker', options);
      const result = await again.run((event) => {
        seen.push(event.position);
      });
      expect(seen).toEqual([0, 1, 3, 4]);
      expect(result).toMatchObject({ endReason: 'caught-up', nextPosition: 5, handled: 2 });
      expect(await again.position()).toMatchObject({ nextPosition: 5 });
      if (subject.reopen) store = await subject.reopen(store);
      await store.put('d', 'a', 6n, [{ type: 'Do' }]);
      const resumed: number[] = [];
      const afterReopen = await consumerOf(store, 'worker', options).run((event) => {
        resumed.push(event.position);
      });
      expect([resumed, afterReopen.nextPosition]).toEqual([[5], 6]);
      expect(store.domains()).toContain(CONSUMER_POSITIONS_DOMAIN);
      // A name follows one domain; another consumer moving it meanwhile is a conflict too.
      await expectCode(
        consumerOf(store, 'worker', { domain: 'other' }).run(() => {}),
        'CONSUMER_CONFLICT',
      );
      await expectCode((async () => consumerOf(store, 'Bad', { domain: 'd' }))(), 'INVALID_NAME');
    });

    it('a domain with no events yet reads as empty, never as an error, and a subscription to it is caught up at once', async () => {
      await store.put('d', 'a', 1n, [{ type: 'A' }]);
      expect(await store.read('fresh')).toEqual({ events: [], nextPosition: 0 });
      expect(await store.read('fresh', { fromPosition: 7, types: ['A'], limit: 5 })).toEqual({
        events: [],
        nextPosition: 7,
      });
      expect(await store.get('fresh', 'a', 1n)).toEqual({ version: 0, events: [] });
      expect(await store.get('fresh', 'a', 1n, { fromVersion: 2, toVersion: 9 })).toEqual({
        version: 0,
        events: [],
      });
      expect(store.hasDomain('fresh')).toBe(false);
      expect(store.domains()).toEqual(['d']);
      const backlog = subscribe(store, 'fresh', { endWhenCaughtUp: true });
      expect(await backlog.next()).toEqual({ done: true, value: undefined });
      expect([backlog.caughtUp, backlog.endReason, backlog.nextPosition]).toEqual([true, 'caught-up', 0]);
      // A bad name is still refused: "no events yet" applies to valid names only.
      await expectCode(store.read('Fresh'), 'INVALID_NAME');
      await expectCode(store.get('fresh!', 'a', 1n), 'INVALID_NAME');
    });

    it('stores a string as its UTF-8 bytes, whatever it holds, and bytes as given', async () => {
      const id = store.newKey();
      await store.put('d', 'a', id, [
        { type: 'Text', data: 'hello' },
        { type: 'Quoted', data: '"hello"' },
        { type: 'Json', data: '{"a":1}', metadata: 'trace-7' },
        { type: 'Unicode', data: 'grüße ✓' },
        { type: 'Bytes', data: bytes('hello') },
      ]);
      const { events } = await store.get('d', 'a', id);
      expect(events.map((e) => [e.type, hex(e.data), hex(e.metadata), e.crc])).toEqual(
        (
          [
            ['Text', 'hello', ''],
            ['Quoted', '"hello"', ''],
            ['Json', '{"a":1}', 'trace-7'],
            ['Unicode', 'grüße ✓', ''],
            ['Bytes', 'hello', ''],
          ] as const
        ).map(([type, data, metadata]) => [
          type,
          hex(bytes(data)),
          hex(bytes(metadata)),
          crc32(bytes(metadata), crc32(bytes(data))),
        ]),
      );
      expect(events[0]!.data.byteLength).toBe(5);
      expect((await store.read('d')).events.map((e) => text(e.data))).toEqual([
        'hello',
        '"hello"',
        '{"a":1}',
        'grüße ✓',
        'hello',
      ]);
    });

    it('pins reads to a generation', async () => {
      const first = await store.put('d', 'a', 1n, [{ type: 'A' }]);
      await store.put('d', 'a', 1n, [{ type: 'B' }]);
      expect(store.generation).toBeGreaterThan(first.generation);
      const cut = await store.get('d', 'a', 1n, { atGeneration: first.generation });
      expect(cut.version).toBe(1);
      expect((await store.read('d', { atGeneration: first.generation })).events).toHaveLength(1);
    });

    it('filters by time range', async () => {
      const r1 = await store.put('d', 'a', 1n, [{ type: 'A' }]);
      const all = await store.read('d', { fromTime: r1.timestamp, toTime: r1.timestamp });
      expect(all.events).toHaveLength(1);
      expect((await store.read('d', { fromTime: r1.timestamp + 1 })).events).toHaveLength(0);
      expect((await store.read('d', { toTime: r1.timestamp - 1 })).events).toHaveLength(0);
    });

    it('notifies watchers after commits', async () => {
      const notices: string[][] = [];
      const stop = store.watch((n) => notices.push([...n.domains]));
      await store.put('d', 'a', 1n, [{ type: 'A' }]);
      stop();
      await store.put('d', 'a', 1n, [{ type: 'A' }]);
      expect(notices.flat()).toContain('d');
      expect(notices.length).toBeGreaterThanOrEqual(1);
    });

    if (subject.reopen) {
      const reopen = subject.reopen;
      it('keeps everything, idempotency keys included, across close and reopen', async () => {
        const put = await store.put(
          'd',
          'a',
          3n,
          [{ type: 'A', data: 'x', metadata: '{"eventId":"once"}' }],
          {
            idempotencyKey: 'once',
          },
        );
        await store.put('d', 'b', 4n, [{ type: 'B', data: 'y' }]);
        store = await reopen(store);
        expect((await store.get('d', 'a', 3n)).events.map((e) => [text(e.data), text(e.metadata)])).toEqual([
          ['x', '{"eventId":"once"}'],
        ]);
        const replay = await store.put('d', 'a', 3n, [{ type: 'A', data: 'x' }], { idempotencyKey: 'once' });
        expect(replay).toMatchObject({
          firstVersion: put.firstVersion,
          firstPosition: put.firstPosition,
          replayed: true,
        });
        const next = await store.put('d', 'a', 3n, [{ type: 'A' }]);
        expect(next.firstPosition).toBe(2);
        expect(next.generation).toBeGreaterThan(put.generation);
        expect(next.timestamp).toBeGreaterThanOrEqual(put.timestamp);
      });
    }

    it('refuses work after close', async () => {
      await store.close();
      await expectCode(store.put('d', 'a', 1n, [{ type: 'A' }]), 'STORE_CLOSED');
      store = await subject.open();
    });
  });
}
