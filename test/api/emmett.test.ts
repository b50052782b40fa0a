import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CommandHandler,
  DeciderSpecification,
  type Event,
  ExpectedVersionConflictError,
  isExpectedVersionConflictError,
  NO_CONCURRENCY_CHECK,
  STREAM_DOES_NOT_EXIST,
  STREAM_EXISTS,
} from '@event-driven-io/emmett';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getRingStoreEventStore, type RingStoreEmmettEventStore } from '../../src/api/emmett.js';
import type { EventStore } from '../../src/api/event-store.js';
import { HttpEventStore } from '../../src/api/http/client.js';
import { RingStore } from '../../src/api/ring-store.js';
import { StreamNameRegistry } from '../../src/api/stream-name-registry.js';
import { MemoryEventStore } from '../../src/model/memory-store.js';
import { type RunningServer, startServer } from '../http/helpers.js';

/**
 * emmett's event-store scenarios, in this project's words, against the adapter over the embedded
 * store, the HTTP client (over a RingStore server) and the in-memory model.
 */

interface Subject {
  name: string;
  /** The store under test, and a second, independent connection to the same data when there is one. */
  open(): Promise<{ store: EventStore; second: () => Promise<EventStore>; close(): Promise<void> }>;
}

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ringstore-emmett-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const subjects: Subject[] = [
  {
    name: 'RingStore',
    open: async () => {
      const store = await RingStore.open({ dir: tempDir(), durability: 'none', ringBytes: 1 << 20 });
      return { store, second: async () => store, close: () => store.close() };
    },
  },
  {
    name: 'HttpEventStore over RingStore',
    open: async () => {
      const ring = await RingStore.open({ dir: tempDir(), durability: 'none', ringBytes: 1 << 20 });
      const server: RunningServer = await startServer(ring);
      const clients: HttpEventStore[] = [await HttpEventStore.connect(server.url)];
      return {
        store: clients[0]!,
        second: async () => {
          const client = await HttpEventStore.connect(server.url);
          clients.push(client);
          return client;
        },
        close: async () => {
          for (const client of clients) await client.close();
          await server.close();
          await ring.close();
        },
      };
    },
  },
  {
    name: 'MemoryEventStore',
    open: async () => {
      const store = new MemoryEventStore();
      return { store, second: async () => store, close: () => store.close() };
    },
  },
];

// A shopping cart, as in emmett's own command-handler tests.
type PricedProductItem = { productId: string; quantity: number; price: number };
type ProductItemAdded = Event<'ProductItemAdded', { productItem: PricedProductItem }>;
type DiscountApplied = Event<'DiscountApplied', { percent: number }>;
type CartEvent = ProductItemAdded | DiscountApplied;
type Cart = { productItems: PricedProductItem[]; totalAmount: number };

const cart = {
  initialState: (): Cart => ({ productItems: [], totalAmount: 0 }),
  evolve: (state: Cart, event: CartEvent): Cart => {
    switch (event.type) {
      case 'ProductItemAdded': {
        const item = event.data.productItem;
        return {
          productItems: [...state.productItems, item],
          totalAmount: state.totalAmount + item.price * item.quantity,
        };
      }
      case 'DiscountApplied':
        return { ...state, totalAmount: state.totalAmount * (1 - event.data.percent) };
    }
  },
};

const added = (productId: string, quantity: number, price: number): ProductItemAdded => ({
  type: 'ProductItemAdded',
  data: { productItem: { productId, quantity, price } },
});

// The account decider of docs/READING.md ("The decider"), typed with emmett's Event.
type AccountEvent = Event<'Deposited', { amount: number }> | Event<'Withdrawn', { amount: number }>;
type AccountCommand = { kind: 'deposit' | 'withdraw'; amount: number };
type Account = { balance: number };

const account = {
  initialState: (): Account => ({ balance: 0 }),
  evolve: (state: Account, e: AccountEvent): Account => ({
    balance: state.balance + (e.type === 'Deposited' ? 1 : -1) * e.data.amount,
  }),
  decide: (c: AccountCommand, state: Account): AccountEvent | AccountEvent[] => {
    if (c.kind === 'deposit') return { type: 'Deposited', data: { amount: c.amount } };
    if (state.balance < c.amount) throw new Error('insufficient funds');
    return [{ type: 'Withdrawn', data: { amount: c.amount } }];
  },
};

/** Retries on version conflicts, quickly (emmett's default waits 100 ms and more between tries). */
const fastRetries = (retries: number) => ({
  onVersionConflict: {
    retries,
    minTimeout: 1,
    maxTimeout: 2,
    factor: 1,
    shouldRetryError: isExpectedVersionConflictError,
  },
});

async function conflictOf(promise: Promise<unknown>): Promise<ExpectedVersionConflictError> {
  const error = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(ExpectedVersionConflictError);
  expect(isExpectedVersionConflictError(error)).toBe(true);
  return error as ExpectedVersionConflictError;
}

describe('DeciderSpecification: the account decider of the docs', () => {
  const given = DeciderSpecification.for(account);

  it('deposits into an empty account', () => {
    given([])
      .when({ kind: 'deposit', amount: 10 })
      .then([{ type: 'Deposited', data: { amount: 10 } }]);
  });

  it('withdraws what the history deposited', () => {
    given([
      { type: 'Deposited', data: { amount: 10 } },
      { type: 'Withdrawn', data: { amount: 3 } },
    ])
      .when({ kind: 'withdraw', amount: 7 })
      .then([{ type: 'Withdrawn', data: { amount: 7 } }]);
  });

  it('refuses to withdraw more than the balance', () => {
    given([{ type: 'Deposited', data: { amount: 5 } }])
      .when({ kind: 'withdraw', amount: 6 })
      .thenThrows<Error>((error) => error.message === 'insufficient funds');
  });
});

for (const subject of subjects) {
  describe(`emmett adapter over ${subject.name}`, () => {
    let opened: Awaited<ReturnType<Subject['open']>>;
    let eventStore: RingStoreEmmettEventStore;
    let streams = 0;
    /** A stream name not used before in this file's store. */
    const newStream = (prefix = 'cart') => `${prefix}-${++streams}`;

    beforeAll(async () => {
      opened = await subject.open();
      eventStore = getRingStoreEventStore(opened.store, { domain: 'shop' });
    });
    afterAll(async () => {
      await opened.close();
    });

    describe('aggregateStream and readStream', () => {
      it('folds a stream into state and reports its version', async () => {
        const name = newStream();
        await eventStore.appendToStream<CartEvent>(name, [added('a', 2, 3), added('b', 1, 4)]);
        await eventStore.appendToStream<CartEvent>(name, [
          { type: 'DiscountApplied', data: { percent: 0.5 } },
        ]);

        const result = await eventStore.aggregateStream<Cart, CartEvent>(name, cart);
        expect(result.currentStreamVersion).toBe(3n);
        expect(result.streamExists).toBe(true);
        expect(result.state).toEqual({
          productItems: [
            { productId: 'a', quantity: 2, price: 3 },
            { productId: 'b', quantity: 1, price: 4 },
          ],
          totalAmount: 5,
        });
      });

      it('a stream nobody appended to aggregates to the initial state, version 0', async () => {
        const result = await eventStore.aggregateStream<Cart, CartEvent>(newStream(), cart);
        expect(result).toEqual({ currentStreamVersion: 0n, state: cart.initialState(), streamExists: false });
        const read = await eventStore.readStream(newStream());
        expect(read).toEqual({ currentStreamVersion: 0n, events: [], streamExists: false });
      });

      it("gives every event emmett's metadata from the store's fields, and keeps its own metadata", async () => {
        const name = newStream();
        const withMetadata = { ...added('a', 1, 1), metadata: { correlationId: 'c-1' } };
        const appended = await eventStore.appendToStream(name, [withMetadata, added('b', 1, 1)]);
        const { events, currentStreamVersion } = await eventStore.readStream<CartEvent>(name);
        expect(currentStreamVersion).toBe(2n);
        expect(events.map((e) => [e.type, e.kind, e.metadata.streamName, e.metadata.streamPosition])).toEqual(
          [
            ['ProductItemAdded', 'Event', name, 1n],
            ['ProductItemAdded', 'Event', name, 2n],
          ],
        );
        expect(events[0]!.data).toEqual(withMetadata.data);
        expect((events[0]!.metadata as Record<string, unknown>).correlationId).toBe('c-1');
        expect(events[0]!.metadata.messageId).toMatch(/^[0-9a-f-]{36}$/);
        expect(events[1]!.metadata.messageId).not.toBe(events[0]!.metadata.messageId);

        // globalPosition is the ringstore position, streamPosition the version, of the stored event.
        const address = await eventStore.streamAddress(name);
        expect(address?.domain).toBe('shop');
        const stored = await opened.store.get('shop', address!.aggregateType, address!.id);
        expect(events.map((e) => e.metadata.globalPosition)).toEqual(
          stored.events.map((e) => BigInt(e.position)),
        );
        expect(appended.lastEventGlobalPosition).toBe(BigInt(stored.events[1]!.position));

        // In ringstore, data and metadata are JSON text; the metadata carries the messageId.
        const text = new TextDecoder();
        expect(JSON.parse(text.decode(stored.events[0]!.data))).toEqual(withMetadata.data);
        expect(JSON.parse(text.decode(stored.events[0]!.metadata))).toEqual({
          correlationId: 'c-1',
          messageId: events[0]!.metadata.messageId,
        });

        // A read event appended elsewhere (forwarded) gets that stream's metadata and a new messageId.
        const copy = newStream();
        await eventStore.appendToStream(copy, [events[0]!]);
        const [forwarded] = (await eventStore.readStream<CartEvent>(copy)).events;
        expect(forwarded!.metadata).toMatchObject({
          streamName: copy,
          streamPosition: 1n,
          correlationId: 'c-1',
        });
        expect(forwarded!.metadata.messageId).not.toBe(events[0]!.metadata.messageId);

        // Events put through ringstore's own API read with a messageId derived from their position.
        await opened.store.put('shop', address!.aggregateType, address!.id, [
          { type: 'Noted', data: '{"n":1}' },
        ]);
        const foreign = (await eventStore.readStream(name, { from: 3n })).events[0]!;
        expect(foreign).toMatchObject({ type: 'Noted', data: { n: 1 }, metadata: { streamPosition: 3n } });
        expect(foreign.metadata.messageId).toBe(`ringstore:shop:${foreign.metadata.globalPosition}`);
      });

      it('reads a range: from and to are inclusive stream positions, maxCount caps the count', async () => {
        const name = newStream();
        await eventStore.appendToStream<CartEvent>(
          name,
          ['a', 'b', 'c', 'd', 'e'].map((id) => added(id, 1, 1)),
        );
        const positions = async (options: { from?: bigint; to?: bigint; maxCount?: bigint }) => {
          const result = await eventStore.readStream<CartEvent>(name, options);
          expect(result.currentStreamVersion).toBe(5n);
          return result.events.map((e) => e.metadata.streamPosition);
        };
        expect(await positions({ from: 2n })).toEqual([2n, 3n, 4n, 5n]);
        expect(await positions({ to: 2n })).toEqual([1n, 2n]);
        expect(await positions({ from: 2n, to: 4n })).toEqual([2n, 3n, 4n]);
        expect(await positions({ from: 3n, maxCount: 2n })).toEqual([3n, 4n]);
        expect(await positions({ from: 9n })).toEqual([]);
        expect(await positions({ from: 4n, to: 3n })).toEqual([]);
      });

      it('readStream and aggregateStream check an expected version', async () => {
        const name = newStream();
        await eventStore.appendToStream<CartEvent>(name, [added('a', 1, 1)]);
        expect((await eventStore.readStream(name, { expectedStreamVersion: 1n })).events).toHaveLength(1);
        const conflict = await conflictOf(eventStore.readStream(name, { expectedStreamVersion: 2n }));
        expect([conflict.current, conflict.expected]).toEqual(['1', '2']);
        await conflictOf(
          eventStore.aggregateStream<Cart, CartEvent>(name, {
            ...cart,
            read: { expectedStreamVersion: STREAM_DOES_NOT_EXIST },
          }),
        );
        await conflictOf(eventStore.readStream(newStream(), { expectedStreamVersion: STREAM_EXISTS }));
      });

      it('upcasts on read and downcasts on append', async () => {
        type Stored = Event<'ProductItemAdded', { id: string; n: number; p: number }>;
        const name = newStream();
        await eventStore.appendToStream<CartEvent, Stored>(name, [added('a', 2, 5)], {
          schema: {
            versioning: {
              downcast: (e: CartEvent) =>
                e.type === 'ProductItemAdded'
                  ? {
                      type: 'ProductItemAdded',
                      data: {
                        id: e.data.productItem.productId,
                        n: e.data.productItem.quantity,
                        p: e.data.productItem.price,
                      },
                    }
                  : (e as unknown as Stored),
            },
          },
        });
        const raw = await eventStore.readStream<Stored>(name);
        expect(raw.events[0]!.data).toEqual({ id: 'a', n: 2, p: 5 });
        const upcast = await eventStore.aggregateStream<Cart, CartEvent, Stored>(name, {
          ...cart,
          read: {
            schema: {
              versioning: {
                upcast: (e: Stored): CartEvent => added(e.data.id, e.data.n, e.data.p),
              },
            },
          },
        });
        expect(upcast.state.totalAmount).toBe(10);
      });
    });

    describe('appendToStream with each expected-version form', () => {
      it('NO_CONCURRENCY_CHECK (and no option) appends to new and existing streams', async () => {
        const name = newStream();
        const first = await eventStore.appendToStream(name, [added('a', 1, 1)]);
        expect(first).toEqual({
          nextExpectedStreamVersion: 1n,
          createdNewStream: true,
          lastEventGlobalPosition: expect.any(BigInt),
        });
        const second = await eventStore.appendToStream(name, [added('b', 1, 1), added('c', 1, 1)], {
          expectedStreamVersion: NO_CONCURRENCY_CHECK,
        });
        expect(second.nextExpectedStreamVersion).toBe(3n);
        expect(second.createdNewStream).toBe(false);
        expect(second.lastEventGlobalPosition).toBeGreaterThan(first.lastEventGlobalPosition);
      });

      it('STREAM_DOES_NOT_EXIST creates a stream once, then conflicts', async () => {
        const name = newStream();
        const created = await eventStore.appendToStream(name, [added('a', 1, 1)], {
          expectedStreamVersion: STREAM_DOES_NOT_EXIST,
        });
        expect(created.createdNewStream).toBe(true);
        const conflict = await conflictOf(
          eventStore.appendToStream(name, [added('b', 1, 1)], {
            expectedStreamVersion: STREAM_DOES_NOT_EXIST,
          }),
        );
        expect([conflict.current, conflict.expected]).toEqual(['1', 'STREAM_DOES_NOT_EXIST']);
        expect((await eventStore.readStream(name)).currentStreamVersion).toBe(1n);
      });

      it('STREAM_EXISTS conflicts on a new stream without registering its name, appends to an existing one', async () => {
        const name = newStream();
        const conflict = await conflictOf(
          eventStore.appendToStream(name, [added('a', 1, 1)], { expectedStreamVersion: STREAM_EXISTS }),
        );
        expect([conflict.current, conflict.expected]).toEqual(['0', 'STREAM_EXISTS']);
        expect(await eventStore.streamAddress(name)).toBeUndefined();

        await eventStore.appendToStream(name, [added('a', 1, 1)]);
        const appended = await eventStore.appendToStream(name, [added('b', 1, 1)], {
          expectedStreamVersion: STREAM_EXISTS,
        });
        expect(appended).toMatchObject({ nextExpectedStreamVersion: 2n, createdNewStream: false });
      });

      it('a bigint version appends only at that version', async () => {
        const name = newStream();
        expect(
          (await eventStore.appendToStream(name, [added('a', 1, 1)], { expectedStreamVersion: 0n }))
            .nextExpectedStreamVersion,
        ).toBe(1n);
        const next = await eventStore.appendToStream(name, [added('b', 1, 1)], { expectedStreamVersion: 1n });
        expect(next).toMatchObject({ nextExpectedStreamVersion: 2n, createdNewStream: false });

        const stale = await conflictOf(
          eventStore.appendToStream(name, [added('c', 1, 1)], { expectedStreamVersion: 1n }),
        );
        expect([stale.current, stale.expected]).toEqual(['2', '1']);
        const ahead = await conflictOf(
          eventStore.appendToStream(name, [added('c', 1, 1)], { expectedStreamVersion: 5n }),
        );
        expect([ahead.current, ahead.expected]).toEqual(['2', '5']);
        const negative = await conflictOf(
          eventStore.appendToStream(name, [added('c', 1, 1)], { expectedStreamVersion: -1n }),
        );
        expect([negative.current, negative.expected]).toEqual(['2', '-1']);
        const huge = await conflictOf(
          eventStore.appendToStream(name, [added('c', 1, 1)], { expectedStreamVersion: 1n << 70n }),
        );
        expect(huge.current).toBe('2');
        await conflictOf(
          eventStore.appendToStream(newStream(), [added('c', 1, 1)], { expectedStreamVersion: 3n }),
        );
        expect((await eventStore.readStream(name)).currentStreamVersion).toBe(2n);
      });

      it('of concurrent appends expecting the same version exactly one wins', async () => {
        const name = newStream();
        await eventStore.appendToStream(name, [added('a', 1, 1)]);
        const outcomes = await Promise.allSettled(
          [1, 2, 3, 4, 5].map((i) =>
            eventStore.appendToStream(name, [added(`x${i}`, 1, 1)], { expectedStreamVersion: 1n }),
          ),
        );
        expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
        for (const outcome of outcomes.filter((o) => o.status === 'rejected')) {
          expect(outcome.reason).toBeInstanceOf(ExpectedVersionConflictError);
        }
        expect((await eventStore.readStream(name)).currentStreamVersion).toBe(2n);
      });

      it('refuses an empty append and data that is not JSON', async () => {
        await expect(eventStore.appendToStream(newStream(), [])).rejects.toMatchObject({
          code: 'INVALID_BATCH',
        });
        const cyclic: Record<string, unknown> = {};
        cyclic.self = cyclic;
        await expect(
          eventStore.appendToStream(newStream(), [{ type: 'Odd', data: cyclic }]),
        ).rejects.toMatchObject({
          code: 'INVALID_EVENT',
        });
      });
    });

    describe('streamExists', () => {
      it('is false for an unknown name, true once the stream has an event', async () => {
        const name = newStream();
        expect(await eventStore.streamExists(name)).toBe(false);
        await eventStore.appendToStream(name, [added('a', 1, 1)]);
        expect(await eventStore.streamExists(name)).toBe(true);
      });

      it('is false for a registered name whose first append failed', async () => {
        const name = newStream();
        // A name is registered before its events are put; this put then fails on the event type.
        await expect(
          eventStore.appendToStream(name, [{ type: 'not a type!', data: {} }]),
        ).rejects.toMatchObject({
          code: 'INVALID_NAME',
        });
        expect(await eventStore.streamAddress(name)).toBeDefined();
        expect(await eventStore.streamExists(name)).toBe(false);
        expect((await eventStore.readStream(name)).streamExists).toBe(false);
      });
    });

    describe('the stream-name registry', () => {
      it('maps every distinct name to its own id, whatever the characters', async () => {
        const names = ['Cart-A', 'cart-a', 'cart-a ', 'cart/a', 'cart:a', 'καλάθι-α', '🛒', 'x'.repeat(4096)];
        for (const name of names) await eventStore.appendToStream(name, [added(name.slice(0, 8), 1, 1)]);
        const addresses = await Promise.all(names.map((name) => eventStore.streamAddress(name)));
        const ids = addresses.map((a) => a!.id);
        expect(new Set(ids).size).toBe(names.length);
        for (const [i, name] of names.entries()) {
          const { events } = await eventStore.readStream<CartEvent>(name);
          expect(
            events.map((e) => [
              e.metadata.streamName,
              e.type === 'ProductItemAdded' && e.data.productItem.productId,
            ]),
          ).toEqual([[name, name.slice(0, 8)]]);
          expect(addresses[i]!.aggregateType).toBe('stream');
        }
        await expect(eventStore.appendToStream('', [added('a', 1, 1)])).rejects.toMatchObject({
          code: 'INVALID_NAME',
        });
        await expect(eventStore.appendToStream('x'.repeat(4097), [added('a', 1, 1)])).rejects.toMatchObject({
          code: 'INVALID_NAME',
        });
      });

      it('registers a name under the aggregate type the adapter chooses, once', async () => {
        const typed = getRingStoreEventStore(opened.store, {
          domain: 'typed',
          aggregateType: (name) => name.split('-')[0]!,
        });
        await typed.appendToStream('order-7', [added('a', 1, 1)]);
        const address = await typed.streamAddress('order-7');
        expect(address).toMatchObject({ domain: 'typed', aggregateType: 'order' });
        const stored = await opened.store.get('typed', 'order', address!.id);
        expect(stored.version).toBe(1);
        await expect(typed.appendToStream('Bad Type-1', [added('a', 1, 1)])).rejects.toMatchObject({
          code: 'INVALID_NAME',
        });
      });

      it('independent registries racing for the same names agree on every id', async () => {
        const second = await opened.second();
        const names = Array.from({ length: 12 }, (_, i) => `race-${streams}-${i}`);
        const left = new StreamNameRegistry(opened.store, 'shop-streams');
        const right = new StreamNameRegistry(second, 'shop-streams');
        const [fromLeft, fromRight] = await Promise.all([
          Promise.all(names.map((name) => left.resolve(name, () => 'stream'))),
          Promise.all([...names].reverse().map((name) => right.resolve(name, () => 'stream'))),
        ]);
        expect(fromLeft).toEqual(fromRight.reverse());
        expect(new Set(fromLeft.map((r) => r.id)).size).toBe(names.length);
        // The adapter's own registry reads the same registrations.
        for (const [i, name] of names.entries()) {
          expect((await eventStore.streamAddress(name))?.id).toBe(fromLeft[i]!.id);
        }
      });

      it('a second connection reads the streams the first one wrote', async () => {
        const name = newStream();
        await eventStore.appendToStream<CartEvent>(name, [added('a', 1, 7)]);
        const other = getRingStoreEventStore(await opened.second(), { domain: 'shop' });
        const result = await other.aggregateStream<Cart, CartEvent>(name, cart);
        expect(result).toMatchObject({
          currentStreamVersion: 1n,
          streamExists: true,
          state: { totalAmount: 7 },
        });
        const next = await other.appendToStream(name, [added('b', 1, 1)], { expectedStreamVersion: 1n });
        expect(next.nextExpectedStreamVersion).toBe(2n);
        expect((await eventStore.readStream(name)).currentStreamVersion).toBe(2n);
      });
    });

    describe("emmett's CommandHandler", () => {
      const handle = CommandHandler<Cart, CartEvent>(cart);

      it('creates the stream on the first command and continues it on the next', async () => {
        const name = newStream();
        const first = await handle(eventStore, name, () => added('a', 10, 3));
        expect(first).toMatchObject({ createdNewStream: true, nextExpectedStreamVersion: 1n });
        expect(first.newState.totalAmount).toBe(30);
        const second = await handle(eventStore, name, (state) => [
          added('b', 1, 10),
          { type: 'DiscountApplied', data: { percent: state.totalAmount > 0 ? 0.5 : 0 } },
        ]);
        expect(second).toMatchObject({ createdNewStream: false, nextExpectedStreamVersion: 3n });
        expect(second.newState.totalAmount).toBe(20);
        expect(second.newEvents).toHaveLength(2);
        const nothing = await handle(eventStore, name, () => []);
        expect(nothing).toMatchObject({ nextExpectedStreamVersion: 3n, newEvents: [] });
        expect((await eventStore.aggregateStream<Cart, CartEvent>(name, cart)).state.totalAmount).toBe(20);
      });

      it('honours an expected version given to the handler', async () => {
        const name = newStream();
        await handle(eventStore, name, () => added('a', 1, 1), {
          expectedStreamVersion: STREAM_DOES_NOT_EXIST,
        });
        await conflictOf(
          handle(eventStore, name, () => added('b', 1, 1), { expectedStreamVersion: STREAM_DOES_NOT_EXIST }),
        );
        const ok = await handle(eventStore, name, () => added('b', 1, 1), { expectedStreamVersion: 1n });
        expect(ok.nextExpectedStreamVersion).toBe(2n);
      });

      it('retries after a conflicting append, and fails without retries', async () => {
        const name = newStream();
        await handle(eventStore, name, () => added('a', 1, 1));
        let meddled = 0;
        let attempts = 0;
        // Before the handler's append, another writer appends to the same stream, once.
        const meddling = async (): Promise<CartEvent> => {
          attempts++;
          if (meddled++ === 0) await eventStore.appendToStream(name, [added('other', 1, 100)]);
          return added('mine', 1, 1);
        };
        const result = await handle(eventStore, name, meddling, { retry: fastRetries(3) });
        expect(attempts).toBe(2);
        expect(result.nextExpectedStreamVersion).toBe(3n);
        expect(result.newState.totalAmount).toBe(102);

        meddled = 0;
        const conflict = await conflictOf(handle(eventStore, name, meddling));
        expect([conflict.current, conflict.expected]).toEqual(['4', '3']);
        expect((await eventStore.readStream(name)).currentStreamVersion).toBe(4n);
      });

      it('concurrent commands on one stream all land with enough retries', async () => {
        const name = newStream('account');
        const commands = 8;
        const results = await Promise.all(
          Array.from({ length: commands }, () =>
            CommandHandler<Account, AccountEvent>(account)(
              eventStore,
              name,
              (state) => account.decide({ kind: 'deposit', amount: 1 }, state),
              { retry: fastRetries(commands) },
            ),
          ),
        );
        expect(results.map((r) => r.nextExpectedStreamVersion).sort((a, b) => Number(a - b))).toEqual(
          Array.from({ length: commands }, (_, i) => BigInt(i + 1)),
        );
        const final = await eventStore.aggregateStream<Account, AccountEvent>(name, account);
        expect(final).toMatchObject({ currentStreamVersion: BigInt(commands), state: { balance: commands } });
      });

      it('runs the docs account decider: deposit, withdraw, refuse an overdraft', async () => {
        const name = newStream('account');
        const run = (command: AccountCommand) =>
          CommandHandler<Account, AccountEvent>(account)(eventStore, name, (state) =>
            account.decide(command, state),
          );
        expect((await run({ kind: 'deposit', amount: 10 })).newState).toEqual({ balance: 10 });
        expect((await run({ kind: 'withdraw', amount: 4 })).newState).toEqual({ balance: 6 });
        await expect(run({ kind: 'withdraw', amount: 7 })).rejects.toThrow('insufficient funds');
        const { events } = await eventStore.readStream<AccountEvent>(name);
        expect(events.map((e) => [e.type, e.data.amount])).toEqual([
          ['Deposited', 10],
          ['Withdrawn', 4],
        ]);
      });
    });
  });
}

describe('emmett adapter: the registry is durable', () => {
  it('a reopened store maps every name to the id it had, and new names to new ids', async () => {
    const dir = tempDir();
    let store = await RingStore.open({ dir, ringBytes: 1 << 20 });
    let eventStore = getRingStoreEventStore(store);
    const names = ['alpha', 'beta', 'gamma'];
    for (const name of names) await eventStore.appendToStream(name, [added(name, 1, 1)]);
    const before = await Promise.all(names.map((name) => eventStore.streamAddress(name)));
    await store.close();

    store = await RingStore.open({ dir, ringBytes: 1 << 20 });
    eventStore = getRingStoreEventStore(store);
    try {
      expect(await Promise.all(names.map((name) => eventStore.streamAddress(name)))).toEqual(before);
      expect((await eventStore.readStream('beta')).currentStreamVersion).toBe(1n);
      await eventStore.appendToStream('delta', [added('d', 1, 1)]);
      const delta = await eventStore.streamAddress('delta');
      expect(before.map((a) => a!.id)).not.toContain(delta!.id);
      expect(store.domains()).toEqual(['emmett', 'emmett-streams']);
    } finally {
      await store.close();
    }
  });

  it('refuses a registry domain equal to the events domain', () => {
    expect(() =>
      getRingStoreEventStore(new MemoryEventStore(), { domain: 'a', registryDomain: 'a' }),
    ).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
  });
});
