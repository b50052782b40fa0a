import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex, TokenAuthority } from '../../src/api/http/auth.js';
import { CONSOLE_CSP } from '../../src/api/http/console-routes.js';
import { RingStore } from '../../src/api/ring-store.js';
import { type RunningServer, startServer } from '../http/helpers.js';
import { type LaunchedBrowser, launchChromium, SCREENSHOTS, watchProblems } from '../support/browser.js';

/**
 * The web console in a real browser (Debian's headless Chromium): a RingStore served over HTTP,
 * data appended through the API, and the page checked view by view. Screenshots of each view are
 * written to test-output/screenshots/.
 */

const PNG_BYTES = 'iVBORw0KGgo=';

async function append(server: RunningServer, id: string, events: unknown[], token?: string) {
  const response = await fetch(`${server.url}/v1/domains/billing/aggregates/invoice/${id}/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ events }),
  });
  expect(response.status).toBe(201);
  return (await response.json()) as { firstPosition: number };
}

let launched: LaunchedBrowser;
let browser: Browser;
const dirs: string[] = [];

async function openStore(): Promise<RingStore> {
  const dir = mkdtempSync(join(tmpdir(), 'ringstore-console-'));
  dirs.push(dir);
  return RingStore.open({ dir });
}

beforeAll(async () => {
  launched = await launchChromium();
  browser = launched.browser;
});

afterAll(async () => {
  await launched?.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function shoot(page: Page, section: string, name: string): Promise<void> {
  await page.locator(`#${section}`).screenshot({ path: join(SCREENSHOTS, name) });
}

describe('web console', () => {
  let store: RingStore;
  let server: RunningServer;

  beforeAll(async () => {
    store = await openStore();
    server = await startServer(store);
    await append(server, '42', [
      { type: 'Opened', data: { amount: 10, customer: 'ACME' }, metadata: { correlationId: 'order-42' } },
      { type: 'Scanned', dataBase64: PNG_BYTES },
    ]);
    await append(server, '43', [{ type: 'Opened', data: { amount: 5 } }]);
    await append(server, '42', [{ type: 'Paid', data: { amount: 10 } }]);
  });

  afterAll(async () => {
    await server?.close();
    await store?.close();
  });

  it('serves the page under a strict CSP and loads it without errors or violations', async () => {
    const response = await fetch(`${server.url}/ui/`);
    expect(response.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
    expect(CONSOLE_CSP).not.toMatch(/unsafe|http|\*/);
    const page = await browser.newPage();
    const problems = await watchProblems(page);
    await page.goto(`${server.url}/ui`);
    const row = page.locator('#domains-rows tr[data-domain="billing"]');
    await expect.poll(() => row.locator('[data-field="events"]').textContent()).toBe('4');
    expect(await row.locator('[data-field="disk"]').textContent()).toMatch(/^[\d.]+ (KiB|MiB)$/);
    await page.waitForSelector('#metrics-charts canvas');
    // Every control is labelled; every button says what it does.
    const unlabelled = await page.evaluate(
      `[...document.querySelectorAll('input, select')].filter((c) => c.labels.length === 0).map((c) => c.id)`,
    );
    expect(unlabelled).toEqual([]);
    expect(
      await page.evaluate(
        `[...document.querySelectorAll('button')].filter((b) => !b.textContent.trim()).length`,
      ),
    ).toBe(0);
    await shoot(page, 'domains', 'domains.png');
    expect(problems.list).toEqual([]);
    // The policy holds and the watch sees it: an inline script added now is refused and reported.
    await page.evaluate(
      "const s = document.createElement('script'); s.textContent = 'window.ran = 1'; document.body.append(s);",
    );
    await expect.poll(() => problems.list.filter((p) => p.startsWith('csp: script-src'))).toHaveLength(1);
    expect(await page.evaluate('window.ran')).toBeUndefined();
    await page.close();
  });

  it('shows a domain query, filtered by type, and pages through it', async () => {
    const page = await browser.newPage();
    const problems = await watchProblems(page);
    await page.goto(`${server.url}/ui/`);
    await page.locator('#domains-rows button', { hasText: 'billing' }).click();
    const types = page.locator('#log-rows [data-field="type"]');
    await expect.poll(() => types.allTextContents()).toEqual(['Opened', 'Scanned', 'Opened', 'Paid']);
    expect(await page.locator('#log-rows tr[data-position="0"] [data-field="data"]').textContent()).toBe(
      '{"amount":10,"customer":"ACME"}',
    );
    await page.fill('#log-types', 'Opened, Paid');
    await page.fill('#log-limit', '2');
    await page.fill('#log-from-position', '0');
    await page.press('#log-limit', 'Enter');
    await expect.poll(() => types.allTextContents()).toEqual(['Opened', 'Opened']);
    await page.click('#log-next');
    await expect.poll(() => types.allTextContents()).toEqual(['Paid']);
    await page.click('#log-previous');
    await expect.poll(() => types.allTextContents()).toEqual(['Opened', 'Opened']);
    await shoot(page, 'log', 'domain-log.png');
    // The time range: from a time after every event there is nothing; from long before, all of them.
    await page.fill('#log-types', '');
    await page.fill('#log-limit', '10');
    await page.fill('#log-from-position', '0');
    await page.fill('#log-from-time', '2099-01-01T00:00:00');
    await page.press('#log-from-time', 'Enter');
    await expect.poll(() => page.locator('#log-summary').textContent()).toMatch(/^0 events from position 0/);
    expect(await types.count()).toBe(0);
    await page.fill('#log-from-time', '2001-01-01T00:00:00');
    await page.fill('#log-to-time', '2099-01-01T00:00:00');
    await page.press('#log-from-time', 'Enter');
    await expect.poll(() => types.allTextContents()).toEqual(['Opened', 'Scanned', 'Opened', 'Paid']);
    expect(problems.list).toEqual([]);
    await page.close();
  });

  it("shows an instance's events with versions, positions, JSON data, binary as hex and metadata", async () => {
    const page = await browser.newPage();
    const problems = await watchProblems(page);
    await page.goto(`${server.url}/ui/`);
    await page.locator('#domains-rows button', { hasText: 'billing' }).click();
    await page.locator('#log-rows tr[data-position="0"] button').click();
    const items = page.locator('#instance-events > li');
    await expect.poll(() => items.count()).toBe(3);
    const field = (i: number, name: string) => items.nth(i).locator(`[data-field="${name}"]`).textContent();
    expect(await field(0, 'version')).toBe('1');
    expect(await field(1, 'position')).toBe('1');
    expect(await field(2, 'version')).toBe('3');
    expect(await field(2, 'position')).toBe('3');
    expect(JSON.parse((await field(0, 'data')) as string)).toEqual({ amount: 10, customer: 'ACME' });
    expect(await field(0, 'data')).toContain('\n  "amount": 10');
    expect(JSON.parse((await field(0, 'metadata')) as string)).toEqual({ correlationId: 'order-42' });
    expect(await field(1, 'data')).toBe(`00000000  ${'89 50 4e 47 0d 0a 1a 0a'.padEnd(47)}  .PNG....`);
    expect(await field(1, 'metadata')).toBe('(empty)');
    const generation = Number(await field(0, 'generation'));
    expect(generation).toBeGreaterThan(0);
    expect(await field(2, 'timestamp')).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC \(\d+\)$/);
    expect(await page.locator('#instance-summary').textContent()).toContain('version 3');

    await page.selectOption('#instance-direction', 'backward');
    await page.fill('#instance-limit', '2');
    await page.locator('#instance-form button[type="submit"]').click();
    await expect
      .poll(async () => items.locator('[data-field="version"]').allTextContents())
      .toEqual(['3', '2']);
    await page.click('#instance-next');
    await expect.poll(async () => items.locator('[data-field="version"]').allTextContents()).toEqual(['1']);
    await page.click('#instance-previous');
    await expect
      .poll(async () => items.locator('[data-field="version"]').allTextContents())
      .toEqual(['3', '2']);
    await shoot(page, 'instance', 'instance.png');
    expect(problems.list).toEqual([]);
    await page.close();
  });

  it('tails a domain live and resumes after the connection drops, each event once', async () => {
    const streams = new Set<Socket>();
    const track = (request: IncomingMessage) => {
      if (request.url?.includes('/subscribe')) streams.add(request.socket);
    };
    server.app.server.on('request', track);
    const page = await browser.newPage();
    const problems = await watchProblems(page);
    await page.goto(`${server.url}/ui/`);
    await page.fill('#tail-domain', 'billing');
    await page.locator('#tail-form button[type="submit"]').click();
    await expect.poll(() => page.locator('#tail-state').textContent()).toBe('live: caught up at position 4');
    const positions = page.locator('#tail-events > li');
    const live = await append(server, '44', [{ type: 'Opened', data: { amount: 7 } }]);
    await expect.poll(() => positions.count()).toBe(1);
    expect(await positions.first().getAttribute('data-position')).toBe(String(live.firstPosition));
    expect(await positions.first().locator('[data-field="instance"]').textContent()).toBe('invoice 44');

    // Cut the stream's connection; events appended meanwhile arrive after the reconnect.
    expect(streams.size).toBe(1);
    for (const socket of streams) socket.destroy();
    server.app.server.off('request', track);
    await append(server, '44', [{ type: 'Paid', data: { amount: 7 } }]);
    await expect.poll(() => page.locator('#tail-state').textContent()).toMatch(/reconnected|caught up/);
    await append(server, '45', [{ type: 'Opened', data: { amount: 1 } }]);
    await expect
      .poll(async () => positions.evaluateAll((items) => items.map((li) => li.getAttribute('data-position'))))
      .toEqual(['6', '5', '4']);
    await shoot(page, 'tail', 'live-tail.png');
    // The browser logs the stream it lost (the cut above); nothing else may appear.
    expect(problems.list).toEqual(['console: Failed to load resource: net::ERR_INCOMPLETE_CHUNKED_ENCODING']);
    await page.close();
  });

  it('draws appends/s, fsync percentiles, ring occupancy and backpressure from /metrics', async () => {
    const page = await browser.newPage();
    const problems = await watchProblems(page);
    await page.goto(`${server.url}/ui/`);
    await page.waitForSelector('#metrics-now [data-figure="appends/s"]');
    let appended = 0;
    const appends = setInterval(() => {
      appended++;
      void append(server, String(100 + appended), [{ type: 'Opened', data: { n: appended } }]);
    }, 100);
    try {
      await expect
        .poll(() => page.locator('[data-figure="appends/s"]').textContent(), { timeout: 15_000 })
        .toMatch(/^[1-9]/);
      await expect
        .poll(() => page.locator('[data-figure="fsync p50 / p90 / p99 (ms)"]').textContent(), {
          timeout: 15_000,
        })
        .toMatch(/^\d+\.\d\d \/ \d+\.\d\d \/ \d+\.\d\d$/);
    } finally {
      clearInterval(appends);
    }
    expect(await page.locator('[data-figure="ring occupancy"]').textContent()).toMatch(/^\d+\.\d %$/);
    expect(await page.locator('[data-figure="backpressure rejections/s"]').textContent()).toBe('0.0');
    expect(await page.locator('#metrics-charts canvas').count()).toBe(4);
    await shoot(page, 'metrics', 'metrics.png');
    expect(problems.list).toEqual([]);
    await page.close();
  });
});

describe("the console's parsers, run in the page", () => {
  let store: RingStore;
  let server: RunningServer;
  beforeAll(async () => {
    store = await openStore();
    server = await startServer(store);
  });
  afterAll(async () => {
    await server?.close();
    await store?.close();
  });

  it('reads SSE messages split anywhere, and fsync percentiles from two histogram scrapes', async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/ui/`);
    const seed = Number(process.env.TEST_SEED ?? Date.now() % 1_000_000);
    const stream = [
      ': subscribed',
      '',
      'id: 0',
      'data: {"type":"A","position":0}',
      '',
      'event: caught-up',
      'data: {"nextPosition":1}',
      '',
      ': ping',
      '',
      'id: 1',
      'data: {"type":"B",',
      'data: "position":1}',
      '',
      '',
    ].join('\n');
    const result = (await page.evaluate(`(async () => {
      const { readEventStream } = await import('./js/sse-reader.js');
      const { quantileBetween, parsePrometheus, bucketsOf } = await import('./js/prometheus.js');
      // A seeded split of the stream into chunks (mulberry32), cutting lines and characters anywhere.
      let state = ${seed};
      const random = () => {
        state = (state + 0x6d2b79f5) | 0;
        let t = Math.imul(state ^ (state >>> 15), 1 | state);
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
      };
      const bytes = new TextEncoder().encode(${JSON.stringify(stream)});
      const chunks = [];
      for (let at = 0; at < bytes.length; ) {
        const size = 1 + Math.floor(random() * 12);
        chunks.push(bytes.slice(at, at + size));
        at += size;
      }
      const body = new ReadableStream({ start(c) { for (const chunk of chunks) c.enqueue(chunk); c.close(); } });
      const messages = [];
      await readEventStream(body, (m) => messages.push(m));
      const scrape = (counts) => bucketsOf(parsePrometheus(
        ['0.001', '0.002', '0.004', '+Inf'].map((le, i) =>
          'ringstore_store_fsync_duration_seconds_bucket{le="' + le + '"} ' + counts[i]).join('\\n')),
        'ringstore_store_fsync_duration_seconds');
      // 10 fsyncs between the scrapes: 4 up to 1 ms, 4 in (1, 2] ms, 2 in (2, 4] ms.
      const before = scrape([5, 5, 5, 5]);
      const after = scrape([9, 13, 15, 15]);
      return {
        messages,
        p50: quantileBetween(before, after, 0.5),
        p90: quantileBetween(before, after, 0.9),
        none: quantileBetween(after, after, 0.5) ?? null,
      };
    })()`)) as { messages: unknown[]; p50: number; p90: number; none: null };
    expect(result.messages, `seed ${seed}`).toEqual([
      { event: 'message', id: '0', data: '{"type":"A","position":0}' },
      { event: 'caught-up', id: undefined, data: '{"nextPosition":1}' },
      { event: 'message', id: '1', data: '{"type":"B",\n"position":1}' },
    ]);
    // Interpolated inside the bucket, as Prometheus' histogram_quantile: rank 5 of 10 → 1.25 ms.
    expect(result.p50).toBeCloseTo(0.00125, 9);
    expect(result.p90).toBeCloseTo(0.003, 9);
    expect(result.none).toBeNull();
    await page.close();
  });
});

describe('web console with auth on', () => {
  const SPECS = [
    { name: 'reader', sha256: sha256Hex('reader-secret'), scopes: { '*': ['read'] } },
    { name: 'other', sha256: sha256Hex('other-secret'), scopes: { other: ['read'] } },
  ];
  let store: RingStore;
  let server: RunningServer;

  beforeAll(async () => {
    store = await openStore();
    server = await startServer(store, { tokens: new TokenAuthority(SPECS) });
    await store.put('billing', 'invoice', 42n, [{ type: 'Opened', data: '{"amount":10}' }]);
  });

  afterAll(async () => {
    await server?.close();
    await store?.close();
  });

  it('asks for a token, shows 401 and 403 plainly, and keeps the token for the tab only', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const problems = await watchProblems(page);
    await page.goto(`${server.url}/ui/`);
    const status = page.locator('#status');
    await expect.poll(() => status.textContent()).toMatch(/^401 Unauthorized: this server needs a token/);
    expect(await page.locator('#token-form').isVisible()).toBe(true);
    expect(await page.evaluate('document.activeElement?.id')).toBe('token-input');
    await page.screenshot({ path: join(SCREENSHOTS, 'token-asked.png') });

    await page.keyboard.type('wrong-secret');
    await page.keyboard.press('Enter');
    await expect.poll(() => status.textContent()).toMatch(/^401 Unauthorized/);

    await page.fill('#token-input', 'other-secret');
    await page.press('#token-input', 'Enter');
    await expect.poll(() => page.locator('#domains-rows').textContent()).toBe('no domain holds events yet');
    await page.fill('#log-domain', 'billing');
    await page.press('#log-domain', 'Enter');
    await expect
      .poll(() => status.textContent())
      .toMatch(/^403 Forbidden: the token may not do this \(FORBIDDEN/);
    await page.screenshot({ path: join(SCREENSHOTS, 'forbidden.png') });

    await page.fill('#token-input', 'reader-secret');
    await page.press('#token-input', 'Enter');
    const row = page.locator('#domains-rows tr[data-domain="billing"] [data-field="events"]');
    await expect.poll(() => row.textContent()).toBe('1');
    expect(await page.evaluate("sessionStorage.getItem('ringstore.token')")).toBe('reader-secret');
    expect(await page.evaluate('localStorage.length')).toBe(0);
    await shoot(page, 'domains', 'domains-with-token.png');

    // Another tab does not share the token: it asks again.
    const other = await context.newPage();
    await other.goto(`${server.url}/ui/`);
    await expect.poll(() => other.locator('#status').textContent()).toMatch(/^401 Unauthorized/);
    // The browser logs each 401/403 answer as a failed resource load; nothing else may appear.
    expect(problems.list.filter((p) => !/status of 40[13]/.test(p))).toEqual([]);
    await context.close();
  });
});
