import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { sha256Hex, TokenAuthority } from '../../src/api/http/auth.js';
import { CONSOLE_CSP } from '../../src/api/http/console-routes.js';
import { ringstore } from '../../src/api/http/fastify-plugin.js';
import { RingStore } from '../../src/api/ring-store.js';
import { MemoryEventStore } from '../../src/model/memory-store.js';
import { rawRequest, serverPerTest } from './helpers.js';

/** The web console's static files and the domain summary it lists (the browser test is test/ui). */

const server = serverPerTest();

interface Answer {
  domain?: string;
  events?: number;
  diskBytes?: number;
  error?: { code: string; option?: string };
}

async function getAnswer(url: string): Promise<Answer> {
  return (await (await fetch(url)).json()) as Answer;
}
const TOKENS = () =>
  new TokenAuthority([
    { name: 'billing', sha256: sha256Hex('billing-secret'), scopes: { billing: ['read'] } },
  ]);

describe('GET /ui', () => {
  it('serves the page, its modules and uPlot with the CSP, and redirects /ui to /ui/', async () => {
    const { url, port } = await server.start();
    const redirect = await fetch(`${url}/ui`, { redirect: 'manual' });
    expect(redirect.status).toBe(308);
    expect(redirect.headers.get('location')).toBe('/ui/');
    const page = await fetch(`${url}/ui/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await page.text();
    expect(html).toBe(readFileSync(join(process.cwd(), 'ui', 'index.html'), 'utf8'));
    // No inline script or style in the page: only files of its own origin.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=/i);
    const main = await fetch(`${url}/ui/js/main.js`);
    expect(main.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const uplot = await fetch(`${url}/ui/vendor/uPlot.esm.js`);
    expect(await uplot.text()).toBe(
      readFileSync(join(process.cwd(), 'node_modules/uplot/dist/uPlot.esm.js'), 'utf8'),
    );
    const missing = await fetch(`${url}/ui/js/nope.js`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as Answer).error?.code).toBe('NOT_FOUND');
    // Only the listed files: no path leads out of the console's folder.
    for (const path of ['/ui/../package.json', '/ui/%2e%2e/package.json', '/ui/js/..%2f..%2fpackage.json']) {
      expect((await rawRequest(port, 'GET', path)).status, path).toBe(404);
    }
  });

  it('needs no token for the console files; the API behind it still does', async () => {
    const { url } = await server.start({ tokens: TOKENS() });
    expect((await fetch(`${url}/ui/`)).status).toBe(200);
    expect((await fetch(`${url}/ui/js/api.js`)).status).toBe(200);
    expect((await fetch(`${url}/v1/domains`)).status).toBe(401);
    expect((await fetch(`${url}/metrics`)).status).toBe(401);
  });

  it('is absent with console: false', async () => {
    const { url } = await server.start({ console: false });
    expect((await fetch(`${url}/ui/`)).status).toBe(404);
  });

  it('is served by the fastify plugin under its prefix', async () => {
    const store = new MemoryEventStore();
    const app = Fastify();
    await app.register(ringstore, { store, prefix: '/es' });
    try {
      const page = await app.inject({ method: 'GET', url: '/es/ui/' });
      expect(page.statusCode).toBe(200);
      expect(page.headers['content-security-policy']).toBe(CONSOLE_CSP);
      expect((await app.inject({ method: 'GET', url: '/es/ui' })).headers.location).toBe('/es/ui/');
      expect((await app.inject({ method: 'GET', url: '/ui/' })).statusCode).toBe(404);
    } finally {
      await app.close();
      await store.close();
    }
  });
});

describe('GET /v1/domains/:domain', () => {
  it('counts the events of any store and names the last one', async () => {
    const { url } = await server.start();
    const store = server.store;
    await store.put('billing', 'invoice', 1n, [{ type: 'Opened' }, { type: 'Paid' }]);
    const last = await store.put('billing', 'invoice', 2n, [{ type: 'Opened' }]);
    await store.put('other', 'invoice', 1n, [{ type: 'Opened' }]);
    const answer = await fetch(`${url}/v1/domains/billing`);
    expect(answer.headers.get('ringstore-generation')).toBe(String(store.generation));
    expect(await answer.json()).toEqual({
      domain: 'billing',
      events: 3,
      lastTimestamp: last.timestamp,
      lastGeneration: last.generation,
    });
    expect(await (await fetch(`${url}/v1/domains/empty`)).json()).toEqual({ domain: 'empty', events: 0 });
    expect((await getAnswer(`${url}/v1/domains/Bad!`)).error?.code).toBe('INVALID_NAME');
    const unknown = await getAnswer(`${url}/v1/domains/billing?limit=1`);
    expect(unknown.error).toMatchObject({ code: 'INVALID_QUERY', option: 'limit' });
  });

  it("reports RingStore's disk bytes: the sizes of the domain folder's files", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringstore-summary-'));
    try {
      const store = await RingStore.open({ dir });
      const { url } = await server.start({}, store);
      await store.put('billing', 'invoice', 1n, [{ type: 'Opened', data: 'x'.repeat(1000) }]);
      const summary = (await (await fetch(`${url}/v1/domains/billing`)).json()) as {
        events: number;
        diskBytes: number;
      };
      expect(summary.events).toBe(1);
      expect(summary.diskBytes).toBe(await store.diskBytes('billing'));
      expect(summary.diskBytes).toBeGreaterThan(1000);
      expect((await getAnswer(`${url}/v1/domains/empty`)).diskBytes).toBe(0);
    } finally {
      await server.start();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('needs read on the domain', async () => {
    const { url } = await server.start({ tokens: TOKENS() });
    const bearer = { authorization: 'Bearer billing-secret' };
    expect((await fetch(`${url}/v1/domains/billing`, { headers: bearer })).status).toBe(200);
    const denied = await fetch(`${url}/v1/domains/other`, { headers: bearer });
    expect(denied.status).toBe(403);
    expect((await fetch(`${url}/v1/domains/billing`)).status).toBe(401);
  });
});
