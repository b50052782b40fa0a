import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256Hex, TokenAuthority } from '../../src/api/http/auth.js';
import { MemoryEventStore } from '../../src/model/memory-store.js';
import { errorOf, postJson, type RunningServer, rawRequest, startServer } from './helpers.js';

const SPECS = [
  { name: 'writer', sha256: sha256Hex('writer-secret'), scopes: { billing: ['append', 'read'] } },
  { name: 'reader', sha256: sha256Hex('reader-secret'), scopes: { '*': ['read'] } },
  { name: 'nothing', sha256: sha256Hex('empty-secret'), scopes: {} },
];
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const EVENTS = '/v1/domains/billing/aggregates/invoice/1/events';

let server: RunningServer | undefined;
let store: MemoryEventStore;

async function start(): Promise<RunningServer> {
  store = new MemoryEventStore();
  server = await startServer(store, { tokens: new TokenAuthority(SPECS) });
  return server;
}

afterEach(async () => {
  await server?.close();
  server = undefined;
  await store.close();
});

describe('bearer tokens', () => {
  it('401 without a token or with a wrong one, with WWW-Authenticate; nothing stored', async () => {
    const { port } = await start();
    for (const headers of [
      {},
      bearer('wrong'),
      { authorization: 'Basic d3JpdGVyLXNlY3JldA==' },
      { authorization: 'Bearer ' },
    ]) {
      const response = await postJson(port, EVENTS, { events: [{ type: 'A' }] }, headers);
      expect(response.status).toBe(401);
      expect(errorOf(response).code).toBe('UNAUTHORIZED');
      expect(response.headers['www-authenticate']).toBe('Bearer');
      expect((await rawRequest(port, 'GET', '/v1/domains/billing/events', { headers })).status).toBe(401);
    }
    expect((await rawRequest(port, 'GET', '/metrics')).status).toBe(401);
    expect((await rawRequest(port, 'POST', '/v1/keys')).status).toBe(401);
    expect(store.domains()).toEqual([]);
  });

  it('grants exactly the scopes of the token, per domain; 403 otherwise', async () => {
    const { port } = await start();
    // The scheme is case-insensitive; the token is not.
    for (const scheme of ['bearer', 'BEARER', 'BeArEr']) {
      const headers = { authorization: `${scheme} writer-secret` };
      expect((await postJson(port, EVENTS, { events: [{ type: 'A' }] }, headers)).status, scheme).toBe(201);
    }
    expect((await postJson(port, EVENTS, { events: [{ type: 'A' }] }, bearer('WRITER-SECRET'))).status).toBe(
      401,
    );
    expect((await postJson(port, EVENTS, { events: [{ type: 'A' }] }, bearer('writer-secret'))).status).toBe(
      201,
    );
    const readerAppend = await postJson(port, EVENTS, { events: [{ type: 'A' }] }, bearer('reader-secret'));
    expect(readerAppend.status).toBe(403);
    expect(errorOf(readerAppend).code).toBe('FORBIDDEN');
    const otherDomain = await postJson(
      port,
      '/v1/domains/hr/aggregates/person/1/events',
      { events: [{ type: 'A' }] },
      bearer('writer-secret'),
    );
    expect(otherDomain.status).toBe(403);
    expect((await rawRequest(port, 'GET', EVENTS, { headers: bearer('reader-secret') })).status).toBe(200);
    expect((await rawRequest(port, 'GET', EVENTS, { headers: bearer('empty-secret') })).status).toBe(403);
    expect(
      (await rawRequest(port, 'GET', '/v1/domains/billing/subscribe', { headers: bearer('empty-secret') }))
        .status,
    ).toBe(403);
    expect(
      (await rawRequest(port, 'GET', '/v1/domains', { headers: bearer('empty-secret') })).json().domains,
    ).toEqual([]);
    expect(
      (await rawRequest(port, 'GET', '/v1/domains', { headers: bearer('reader-secret') })).json().domains,
    ).toEqual(['billing']);
    expect((await rawRequest(port, 'GET', '/metrics', { headers: bearer('empty-secret') })).status).toBe(200);
    expect((await rawRequest(port, 'GET', '/health')).status).toBe(200);
    expect((await rawRequest(port, 'GET', '/health?probe=1')).status).toBe(200);
    expect(store.domains()).toEqual(['billing']);
  });

  it('checks the scope per NDJSON line', async () => {
    const { port } = await start();
    const body = [
      { domain: 'billing', aggregateType: 'a', id: '1', events: [{ type: 'A' }] },
      { domain: 'hr', aggregateType: 'a', id: '1', events: [{ type: 'A' }] },
    ]
      .map((l) => JSON.stringify(l))
      .join('\n');
    const response = await rawRequest(port, 'POST', '/v1/ingest', {
      headers: { 'content-type': 'application/x-ndjson', ...bearer('writer-secret') },
      body,
    });
    const results = response.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(results.map((r) => r.ok || r.error.code)).toEqual([true, 'FORBIDDEN']);
    expect(store.domains()).toEqual(['billing']);
  });

  it('answers 401 before reading a body of any content type', async () => {
    const { port } = await start();
    const response = await rawRequest(port, 'POST', EVENTS, {
      headers: { 'content-type': 'text/plain' },
      body: 'x',
    });
    expect(response.status).toBe(401);
  });
});

describe('tokens file', () => {
  it('loads a valid file and rejects malformed ones with INVALID_OPTION', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringstore-tokens-'));
    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify(SPECS));
    const authority = TokenAuthority.fromFile(good);
    expect(authority.authenticate('Bearer writer-secret')?.name).toBe('writer');
    expect(authority.authenticate('Bearer writer-secretx')).toBeUndefined();
    const bad: unknown[] = [
      [],
      {},
      [{ name: 'x', sha256: 'abc', scopes: {} }],
      [{ name: 'x', sha256: sha256Hex('a').toUpperCase(), scopes: {} }],
      [{ name: 'x', sha256: sha256Hex('a'), scopes: { '../etc': ['read'] } }],
      [{ name: 'x', sha256: sha256Hex('a'), scopes: { billing: ['write'] } }],
      [SPECS[0], SPECS[0]],
    ];
    for (const content of bad) {
      const file = join(dir, 'bad.json');
      writeFileSync(file, JSON.stringify(content));
      expect(() => TokenAuthority.fromFile(file)).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTION' }),
      );
    }
    writeFileSync(join(dir, 'broken.json'), '{');
    expect(() => TokenAuthority.fromFile(join(dir, 'broken.json'))).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION' }),
    );
    expect(() => TokenAuthority.fromFile(join(dir, 'missing.json'))).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION' }),
    );
  });
});
