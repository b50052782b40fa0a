import { describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/api/event-store.js';
import { HttpEventStore } from '../../src/api/http/client.js';
import { instancePage } from '../../src/api/http/paging.js';
import { MemoryEventStore } from '../../src/model/memory-store.js';
import type { InstanceEvents, StoredEvent } from '../../src/types.js';
import { mulberry32 } from '../support/prng.js';
import { serverPerTest } from './helpers.js';

const SEED = Number(process.env.RINGSTORE_SEED ?? 8_080);
const server = serverPerTest();
const PATH = '/v1/domains/shop/aggregates/cart/7/events';

interface Page {
  version: number;
  events: { version: number }[];
  lastVersion?: number;
  complete: boolean;
  nextVersion?: number;
}

/** Answers at most 700 events per get, as a store bounding a page by bytes would. */
class ShortPages extends MemoryEventStore {
  override async get(...args: Parameters<EventStore['get']>): Promise<InstanceEvents> {
    const result = await super.get(...args);
    return { ...result, events: result.events.slice(0, 700) };
  }
}

async function storeWith(events: number, store = new MemoryEventStore()): Promise<MemoryEventStore> {
  for (let done = 0; done < events; done += 1000) {
    const batch = Array.from({ length: Math.min(1000, events - done) }, () => ({ type: 'Added' }));
    await store.put('shop', 'cart', 7n, batch);
  }
  await store.put('shop', 'cart', 8n, [{ type: 'Added' }]);
  return store;
}

async function getPage(url: string, query = ''): Promise<Page> {
  const response = await fetch(`${url}${PATH}${query}`);
  expect(response.status).toBe(200);
  return (await response.json()) as Page;
}

describe('paged instance reads over HTTP', () => {
  it('say where they stopped: lastVersion, complete, nextVersion; following them reads everything once', async () => {
    const { url } = await server.start({}, await storeWith(2500));
    const first = await getPage(url);
    expect(first).toMatchObject({ version: 2500, lastVersion: 1000, complete: false, nextVersion: 1001 });
    expect(first.events).toHaveLength(1000);
    const seen = [...first.events.map((e) => e.version)];
    let page = first;
    while (!page.complete) {
      page = await getPage(url, `?fromVersion=${page.nextVersion}`);
      seen.push(...page.events.map((e) => e.version));
    }
    expect(page).toMatchObject({ lastVersion: 2500, complete: true });
    expect(page).not.toHaveProperty('nextVersion');
    expect(seen).toEqual(Array.from({ length: 2500 }, (_, i) => i + 1));
  });

  it('is complete at toVersion, and for empty pages and empty instances', async () => {
    const { url } = await server.start({}, await storeWith(2500));
    const bounded = await getPage(url, '?fromVersion=1001&toVersion=1500');
    expect(bounded).toMatchObject({ version: 2500, lastVersion: 1500, complete: true });
    expect(bounded.events).toHaveLength(500);
    const cut = await getPage(url, '?fromVersion=10&toVersion=20&limit=5');
    expect(cut).toMatchObject({ lastVersion: 14, complete: false, nextVersion: 15 });
    const past = await getPage(url, '?fromVersion=2501');
    expect(past).toEqual({ version: 2500, events: [], complete: true });
    const none = await fetch(`${url}/v1/domains/shop/aggregates/cart/9/events`);
    expect(await none.json()).toEqual({ version: 0, events: [], complete: true });
  });

  it('HttpEventStore follows nextVersion, also when the server returns shorter pages than asked', async () => {
    const shortPages = await storeWith(2500, new ShortPages());
    const { url } = await server.start({}, shortPages);
    const client = await HttpEventStore.connect(url);
    const all = await client.get('shop', 'cart', 7n);
    expect(all.version).toBe(2500);
    expect(all.events.map((e) => e.version)).toEqual(Array.from({ length: 2500 }, (_, i) => i + 1));
    expect((await client.get('shop', 'cart', 7n, { fromVersion: 100, limit: 1000 })).events).toHaveLength(
      1000,
    );
    await client.close();
  });
});

describe('paged backward instance reads over HTTP', () => {
  it('start at the last version, go down, and say where the next page starts (nextVersion = lastVersion − 1)', async () => {
    const { url } = await server.start({}, await storeWith(2500));
    const first = await getPage(url, '?direction=backward');
    expect(first).toMatchObject({ version: 2500, lastVersion: 1501, complete: false, nextVersion: 1500 });
    expect(first.events.map((e) => e.version).slice(0, 3)).toEqual([2500, 2499, 2498]);
    const seen = [...first.events.map((e) => e.version)];
    let page = first;
    while (!page.complete) {
      page = await getPage(url, `?direction=backward&fromVersion=${page.nextVersion}`);
      seen.push(...page.events.map((e) => e.version));
    }
    expect(page).toMatchObject({ lastVersion: 1, complete: true });
    expect(page).not.toHaveProperty('nextVersion');
    expect(seen).toEqual(Array.from({ length: 2500 }, (_, i) => 2500 - i));
  });

  it('is complete at toVersion (the lowest version), past the end, and for empty instances', async () => {
    const { url } = await server.start({}, await storeWith(30));
    const bounded = await getPage(url, '?direction=backward&fromVersion=20&toVersion=11');
    expect(bounded).toMatchObject({ version: 30, lastVersion: 11, complete: true });
    expect(bounded.events.map((e) => e.version)).toEqual([20, 19, 18, 17, 16, 15, 14, 13, 12, 11]);
    const cut = await getPage(url, '?direction=backward&fromVersion=20&toVersion=11&limit=4');
    expect(cut).toMatchObject({ lastVersion: 17, complete: false, nextVersion: 16 });
    const beyond = await getPage(url, '?direction=backward&fromVersion=99&limit=2');
    expect(beyond.events.map((e) => e.version)).toEqual([30, 29]);
    expect(await getPage(url, '?direction=backward&fromVersion=0')).toEqual({
      version: 30,
      events: [],
      complete: true,
    });
    const none = await fetch(`${url}/v1/domains/shop/aggregates/cart/9/events?direction=backward`);
    expect(await none.json()).toEqual({ version: 0, events: [], complete: true });
    const bad = await fetch(`${url}${PATH}?direction=down`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: unknown }).error).toMatchObject({
      code: 'INVALID_QUERY',
      option: 'direction',
    });
  });

  it('HttpEventStore reads backward across pages, also when the server returns shorter pages', async () => {
    const { url } = await server.start({}, await storeWith(2500, new ShortPages()));
    const client = await HttpEventStore.connect(url);
    const all = await client.get('shop', 'cart', 7n, { direction: 'backward' });
    expect(all.version).toBe(2500);
    expect(all.events.map((e) => e.version)).toEqual(Array.from({ length: 2500 }, (_, i) => 2500 - i));
    const last = await client.get('shop', 'cart', 7n, {
      direction: 'backward',
      limit: 1000,
      fromVersion: 1200,
    });
    expect(last.events.map((e) => e.version)).toEqual(Array.from({ length: 1000 }, (_, i) => 1200 - i));
    await client.close();
  });
});

describe(`instancePage (seed ${SEED})`, () => {
  it('is complete exactly when no event of the range lies past the page', () => {
    const random = mulberry32(SEED);
    const int = (n: number) => Math.floor(random() * n);
    for (let round = 0; round < 2000; round++) {
      const version = int(50);
      const fromVersion = 1 + int(55);
      const toVersion = random() < 0.5 ? undefined : int(60);
      const limit = int(21);
      const end = Math.min(toVersion ?? version, version);
      const versions: number[] = [];
      for (let v = fromVersion; v <= end && versions.length < limit; v++) versions.push(v);
      const result: InstanceEvents = {
        version,
        events: versions.map((v) => ({ version: v }) as StoredEvent),
      };
      const page = instancePage(result, {
        direction: 'forward',
        fromVersion,
        toVersion: toVersion ?? Number.POSITIVE_INFINITY,
        limit,
      });
      const context = `seed ${SEED} round ${round}: version ${version}, from ${fromVersion}, to ${toVersion}, limit ${limit}`;
      // limit 0 reads the version alone: more remain whenever the range holds an event.
      const remaining = limit === 0 ? fromVersion <= end : (versions.at(-1) ?? end) < end;
      expect(page.complete, context).toBe(!remaining);
      expect(page.lastVersion, context).toBe(versions.at(-1));
      const next = limit === 0 ? fromVersion : (versions.at(-1) as number) + 1;
      expect(page.nextVersion, context).toBe(remaining ? next : undefined);
    }
  });

  it('backward: complete exactly when the page reached toVersion (default 1)', () => {
    const random = mulberry32(SEED + 1);
    const int = (n: number) => Math.floor(random() * n);
    for (let round = 0; round < 2000; round++) {
      const version = int(50);
      const fromVersion = random() < 0.5 ? undefined : int(55);
      const toVersion = 1 + int(30);
      const limit = int(21);
      const versions: number[] = [];
      for (let v = Math.min(fromVersion ?? version, version); v >= toVersion && versions.length < limit; v--)
        versions.push(v);
      const result: InstanceEvents = {
        version,
        events: versions.map((v) => ({ version: v }) as StoredEvent),
      };
      const page = instancePage(result, {
        direction: 'backward',
        fromVersion: fromVersion ?? Number.POSITIVE_INFINITY,
        toVersion,
        limit,
      });
      const context = `seed ${SEED + 1} round ${round}: version ${version}, from ${fromVersion}, to ${toVersion}, limit ${limit}`;
      const start = Math.min(fromVersion ?? version, version);
      const remaining =
        limit === 0 ? start >= toVersion : versions.length > 0 && (versions.at(-1) as number) > toVersion;
      expect(page.complete, context).toBe(!remaining);
      expect(page.lastVersion, context).toBe(versions.at(-1));
      const next = limit === 0 ? start : (versions.at(-1) as number) - 1;
      expect(page.nextVersion, context).toBe(remaining ? next : undefined);
    }
  });
});
