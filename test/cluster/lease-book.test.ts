import { jetstream } from '@nats-io/jetstream';
import { type KV, type KvEntry, Kvm } from '@nats-io/kv';
import { connect, type NatsConnection, TimeoutError } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LeaseBook } from '../../src/api/cluster/lease-book.js';
import { clusterSuite } from '../support/cluster-suite.js';
import { mulberry32 } from '../support/prng.js';

/**
 * LeaseBook against a real lease bucket: renewals of one lease run one at a time (concurrent
 * callers share one), a write of this node's whose answer was lost is recovered by re-reading the
 * key, and a lease that another node (or another lease of the same node id) holds is still lost.
 */
const suite = clusterSuite('lease');
const SEED = Number(process.env.RINGSTORE_SEED ?? Date.now() % 1_000_000);
/** Long enough that the books' own renewal timers (every TTL/4) stay out of the tests. */
const TTL = 60_000;

let nc: NatsConnection;
let buckets = 0;

beforeAll(async () => {
  nc = await connect({ servers: suite.cluster.urls });
});
afterAll(async () => {
  await nc?.close();
});

/** A new lease bucket; one replica, so that reads are the leader's (see the stale-read test). */
async function bucket(): Promise<KV> {
  return new Kvm(jetstream(nc)).create(`leases_${process.pid}_${++buckets}`, {
    ttl: TTL,
    history: 1,
    replicas: 1,
  });
}

/**
 * The bucket as the book sees it, with faults to inject: the next update or create is stored but
 * its answer is lost (the book gets a timeout), the next delete never reaches the server (a
 * timeout too), gets fail (a timeout) as `gets` says, and the next get answers a stale entry.
 */
function faulty(kv: KV) {
  const faults = {
    loseUpdate: 0,
    loseCreate: 0,
    dropDelete: 0,
    /** What the next gets do, in order ('fail': a timeout); then they pass. */
    gets: [] as ('pass' | 'fail')[],
    staleGet: undefined as KvEntry | null | undefined,
  };
  const wrapped = new Proxy(kv, {
    get(target, prop) {
      if (prop === 'update') {
        return async (k: string, data: Uint8Array, version: number) => {
          const revision = await target.update(k, data, version);
          if (faults.loseUpdate > 0) {
            faults.loseUpdate--;
            throw new TimeoutError();
          }
          return revision;
        };
      }
      if (prop === 'create') {
        return async (k: string, data: Uint8Array) => {
          const revision = await target.create(k, data);
          if (faults.loseCreate > 0) {
            faults.loseCreate--;
            throw new TimeoutError();
          }
          return revision;
        };
      }
      if (prop === 'delete') {
        return async (k: string, opts?: Parameters<KV['delete']>[1]) => {
          if (faults.dropDelete > 0) {
            faults.dropDelete--;
            throw new TimeoutError();
          }
          return target.delete(k, opts);
        };
      }
      if (prop === 'get') {
        return async (k: string) => {
          if (faults.gets.shift() === 'fail') throw new TimeoutError();
          if (faults.staleGet !== undefined) {
            const stale = faults.staleGet;
            faults.staleGet = undefined;
            return stale;
          }
          return target.get(k);
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { kv: wrapped, faults };
}

function book(kv: KV, node: string) {
  const losses: string[] = [];
  const leases = new LeaseBook(kv, node, TTL, (domain, reason) => losses.push(`${domain}: ${reason}`));
  return { leases, losses };
}

async function holder(kv: KV, domain: string): Promise<{ node: string; revision: number } | null> {
  const entry = await kv.get(domain);
  if (entry?.operation !== 'PUT') return null;
  return { node: entry.json<{ node: string }>().node, revision: entry.revision };
}

describe(`LeaseBook (seed ${SEED}; set RINGSTORE_SEED to change)`, () => {
  it('concurrent renewals of one lease all succeed and the lease is kept', async () => {
    const random = mulberry32(SEED);
    const kv = await bucket();
    const a = book(kv, 'a');
    try {
      expect(await a.leases.take('orders')).toBe(true);
      for (let round = 0; round < 20; round++) {
        const callers = 2 + Math.floor(random() * 4);
        const results = await Promise.all(Array.from({ length: callers }, () => a.leases.renew('orders')));
        expect(results, `seed ${SEED}, round ${round}: ${callers} concurrent renewals`).toEqual(
          Array.from({ length: callers }, () => true),
        );
      }
      expect(a.losses, `seed ${SEED}`).toEqual([]);
      expect(a.leases.lost).toBe(0);
      expect(a.leases.holds('orders')).toBe(true);
      expect(await a.leases.renew('orders')).toBe(true);
      expect((await holder(kv, 'orders'))?.node).toBe('a');
      // Nobody else can take it.
      const b = book(kv, 'b');
      expect(await b.leases.take('orders')).toBe(false);
    } finally {
      await a.leases.close();
    }
  });

  it('a renewal stored on the server whose answer was lost is recovered by the next renewal', async () => {
    const { kv, faults } = faulty(await bucket());
    const a = book(kv, 'a');
    try {
      expect(await a.leases.take('orders')).toBe(true);
      const before = (await holder(kv, 'orders'))?.revision;
      faults.loseUpdate = 1;
      // No answer: not a loss while the lease is still valid locally.
      expect(await a.leases.renew('orders')).toBe(true);
      const after = (await holder(kv, 'orders'))?.revision;
      expect(after).toBeGreaterThan(before ?? 0);
      // The book's revision is stale now: the compare-and-set fails, the key is read back and is ours.
      expect(await a.leases.renew('orders')).toBe(true);
      expect(await a.leases.renew('orders')).toBe(true);
      expect(a.losses).toEqual([]);
      expect(a.leases.holds('orders')).toBe(true);
      expect((await holder(kv, 'orders'))?.revision).toBe((after ?? 0) + 2);
      // And release deletes the key with the revision the book knows now.
      await a.leases.release('orders');
      expect(await holder(kv, 'orders')).toBeNull();
    } finally {
      await a.leases.close();
    }
  });

  it('the key rewritten behind the book with the same value is recovered on the next renewal', async () => {
    const random = mulberry32(SEED + 1);
    const kv = await bucket();
    const a = book(kv, 'a');
    try {
      expect(await a.leases.take('orders')).toBe(true);
      for (let round = 0; round < 10; round++) {
        // One to three writes of this node the book never heard about.
        const unseen = 1 + Math.floor(random() * 3);
        for (let i = 0; i < unseen; i++) {
          const entry = await kv.get('orders');
          await kv.update('orders', entry!.value, entry!.revision);
        }
        expect(await a.leases.renew('orders'), `seed ${SEED}, round ${round}: ${unseen} unseen writes`).toBe(
          true,
        );
      }
      expect(a.losses, `seed ${SEED}`).toEqual([]);
      expect(a.leases.holds('orders')).toBe(true);
    } finally {
      await a.leases.close();
    }
  });

  it('release after a renewal whose answer was lost still deletes the key', async () => {
    const { kv, faults } = faulty(await bucket());
    const a = book(kv, 'a');
    const b = book(kv, 'b');
    try {
      expect(await a.leases.take('orders')).toBe(true);
      faults.loseUpdate = 1;
      expect(await a.leases.renew('orders')).toBe(true);
      await a.leases.release('orders');
      expect(await holder(kv, 'orders')).toBeNull();
      // So another node takes over at once, not after the TTL.
      expect(await b.leases.take('orders')).toBe(true);
    } finally {
      await a.leases.close();
      await b.leases.close();
    }
  });

  it('a lease whose release never reached the bucket is taken again by its book, by nobody else', async () => {
    const { kv, faults } = faulty(await bucket());
    const a = book(kv, 'a');
    const sameId = book(kv, 'a');
    const b = book(kv, 'b');
    try {
      expect(await a.leases.take('orders')).toBe(true);
      faults.dropDelete = 1;
      await a.leases.release('orders');
      const left = await holder(kv, 'orders');
      expect(left?.node).toBe('a');
      // Another node, and another book (process) of the same node id, wait for it to expire.
      expect(await b.leases.take('orders')).toBe(false);
      expect(await sameId.leases.take('orders')).toBe(false);
      // The book that gave it up writes over its own take at once.
      expect(await a.leases.take('orders')).toBe(true);
      expect(a.leases.taken).toBe(2);
      expect((await holder(kv, 'orders'))?.revision).toBeGreaterThan(left!.revision);
      expect(await a.leases.renew('orders')).toBe(true);
      await a.leases.release('orders');
      expect(await holder(kv, 'orders')).toBeNull();
      expect(a.losses).toEqual([]);
    } finally {
      await a.leases.close();
      await sameId.leases.close();
      await b.leases.close();
    }
  });

  it('a take whose write and read-back both went unanswered is taken again by its book', async () => {
    const { kv, faults } = faulty(await bucket());
    const a = book(kv, 'a');
    const b = book(kv, 'b');
    try {
      // The create is stored, its answer lost, and the read that would tell fails: not held.
      faults.loseCreate = 1;
      faults.gets = ['fail'];
      expect(await a.leases.take('orders')).toBe(false);
      expect((await holder(kv, 'orders'))?.node).toBe('a');
      expect(await b.leases.take('orders')).toBe(false);
      expect(await a.leases.take('orders')).toBe(true);
      // The same for the compare-and-set of a re-take, after a release that never reached the
      // bucket: the re-take reads the key, its update is stored unanswered, the read-back fails.
      faults.dropDelete = 1;
      await a.leases.release('orders');
      faults.loseUpdate = 1;
      faults.gets = ['pass', 'fail'];
      expect(await a.leases.take('orders')).toBe(false);
      expect(await b.leases.take('orders')).toBe(false);
      expect(await a.leases.take('orders')).toBe(true);
      expect(await a.leases.renew('orders')).toBe(true);
      expect(a.losses).toEqual([]);
    } finally {
      await a.leases.close();
      await b.leases.close();
    }
  });

  it('a lease given up is not taken again once anyone else wrote its key', async () => {
    const { kv, faults } = faulty(await bucket());
    const a = book(kv, 'a');
    const b = book(kv, 'b');
    try {
      expect(await a.leases.take('orders')).toBe(true);
      faults.dropDelete = 1;
      await a.leases.release('orders');
      // The key goes (as when it expires) and b takes it: a's earlier take is gone for good.
      await kv.delete('orders');
      expect(await b.leases.take('orders')).toBe(true);
      expect(await a.leases.take('orders')).toBe(false);
      expect((await holder(kv, 'orders'))?.node).toBe('b');
      expect(await b.leases.renew('orders')).toBe(true);
    } finally {
      await a.leases.close();
      await b.leases.close();
    }
  });

  it('a take stored on the server whose answer was lost still takes the lease', async () => {
    const { kv, faults } = faulty(await bucket());
    const a = book(kv, 'a');
    const b = book(kv, 'b');
    try {
      faults.loseCreate = 1;
      expect(await a.leases.take('orders')).toBe(true);
      expect(a.leases.holds('orders')).toBe(true);
      expect(await a.leases.renew('orders')).toBe(true);
      expect(await b.leases.take('orders')).toBe(false);
      expect((await holder(kv, 'orders'))?.node).toBe('a');
    } finally {
      await a.leases.close();
      await b.leases.close();
    }
  });

  it('a stale read of the key is not taken as proof either way', async () => {
    const { kv, faults } = faulty(await bucket());
    const a = book(kv, 'a');
    try {
      expect(await a.leases.take('orders')).toBe(true);
      const old = await kv.get('orders');
      faults.loseUpdate = 1;
      expect(await a.leases.renew('orders')).toBe(true);
      // The read-back answers the revision the book already tried (a replica behind the leader):
      // undecided, so the lease is neither lost nor renewed by this call.
      faults.staleGet = old;
      expect(await a.leases.renew('orders')).toBe(true);
      expect(a.losses).toEqual([]);
      // With a current read, the next renewal recovers.
      expect(await a.leases.renew('orders')).toBe(true);
      expect(await a.leases.renew('orders')).toBe(true);
      expect(a.losses).toEqual([]);
    } finally {
      await a.leases.close();
    }
  });

  it('a lease another node took is reported lost', async () => {
    const kv = await bucket();
    const a = book(kv, 'a');
    const b = book(kv, 'b');
    try {
      expect(await a.leases.take('orders')).toBe(true);
      // The key goes (as when it expires) and b takes it.
      await kv.delete('orders');
      expect(await b.leases.take('orders')).toBe(true);
      // Concurrent renewals share the one that finds out.
      expect(await Promise.all([a.leases.renew('orders'), a.leases.renew('orders')])).toEqual([false, false]);
      expect(a.leases.holds('orders')).toBe(false);
      expect(a.leases.lost).toBe(1);
      expect(a.losses).toHaveLength(1);
      expect(a.losses[0]).toMatch(/orders: renewal failed: .*node b/);
      expect(b.leases.holds('orders')).toBe(true);
      expect(await b.leases.renew('orders')).toBe(true);
      // a's release does not delete b's key.
      await a.leases.release('orders');
      expect(await holder(kv, 'orders')).toMatchObject({ node: 'b' });
    } finally {
      await a.leases.close();
      await b.leases.close();
    }
  });

  it('a later lease of the same node id, taken in the same millisecond, is not mistaken for this one', async () => {
    const kv = await bucket();
    const now = vi.spyOn(Date, 'now').mockReturnValue(1_700_000_000_000);
    const first = book(kv, 'a');
    const second = book(kv, 'a');
    try {
      expect(await first.leases.take('orders')).toBe(true);
      await kv.delete('orders');
      expect(await second.leases.take('orders')).toBe(true);
      // Same node id, same `since`: only the take's token tells the two apart.
      expect(await first.leases.renew('orders')).toBe(false);
      expect(first.losses[0]).toMatch(/another lease of this node/);
      expect(await second.leases.renew('orders')).toBe(true);
      expect(second.losses).toEqual([]);
    } finally {
      now.mockRestore();
      await first.leases.close();
      await second.leases.close();
    }
  });
});
