import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { HttpEventStore } from '../../src/api/http/client.js';
import { crc32 } from '../../src/model/crc.js';
import { MemoryEventStore } from '../../src/model/memory-store.js';
import { errorOf, postJson, rawRequest, serverPerTest, startServer } from './helpers.js';

const EVENTS = '/v1/domains/billing/aggregates/invoice';

const http = serverPerTest();
const start = (options = {}) => http.start(options);

describe('POST /v1/domains/:domain/aggregates/:type/:id/events', () => {
  it('appends a batch: 201 with exactly the result fields, then 200 with the same body on replay', async () => {
    const { port } = await start();
    const body = { events: [{ type: 'Opened', data: { n: 1 } }, { type: 'Paid' }], idempotencyKey: 'k1' };
    const first = await postJson(port, `${EVENTS}/7/events`, body);
    expect(first.status).toBe(201);
    const result = first.json();
    expect(Object.keys(result).sort()).toEqual([
      'firstPosition',
      'firstVersion',
      'generation',
      'lastVersion',
      'timestamp',
    ]);
    expect(result).toMatchObject({ firstVersion: 1, lastVersion: 2, firstPosition: 0 });
    expect(first.headers['ringstore-generation']).toBe(String(result.generation));
    expect(first.headers['ringstore-durability']).toBe('fsync');
    const replay = await postJson(port, `${EVENTS}/7/events`, body);
    expect(replay.status).toBe(200);
    expect(replay.json()).toEqual(result);
    expect((await http.store.get('billing', 'invoice', 7n)).version).toBe(2);
  });

  it('answers a version conflict with 409 VERSION_CONFLICT and the actual version', async () => {
    const { port } = await start();
    await postJson(port, `${EVENTS}/1/events`, { events: [{ type: 'A' }] });
    const conflict = await postJson(port, `${EVENTS}/1/events`, {
      events: [{ type: 'B' }],
      expectedVersion: 0,
    });
    expect(conflict.status).toBe(409);
    expect(errorOf(conflict)).toMatchObject({ code: 'VERSION_CONFLICT', actualVersion: 1 });
    const exists = await postJson(port, `${EVENTS}/2/events`, {
      events: [{ type: 'B' }],
      expectedVersion: 'exists',
    });
    expect(errorOf(exists)).toMatchObject({ code: 'VERSION_CONFLICT', actualVersion: 0 });
    const ok = await postJson(port, `${EVENTS}/1/events`, { events: [{ type: 'B' }], expectedVersion: 1 });
    expect(ok.status).toBe(201);
  });

  it('checks a supplied crc', async () => {
    const { port } = await start();
    const data = { a: 'b' };
    const good = crc32(new TextEncoder().encode(JSON.stringify(data)));
    expect(
      (await postJson(port, `${EVENTS}/1/events`, { events: [{ type: 'A', data, crc: good }] })).status,
    ).toBe(201);
    const bad = await postJson(port, `${EVENTS}/1/events`, { events: [{ type: 'A', data, crc: good ^ 1 }] });
    expect(errorOf(bad).code).toBe('CRC_MISMATCH');
  });

  it('stores the compact UTF-8 of the body, multi-byte characters included', async () => {
    const { port } = await start();
    const bodies = [
      Buffer.from('{"events":[{"type":"A","data":{"é":"中😀"},"metadata":[1,{"b":"\u2028"}]}]}'),
      Buffer.from('{"events":[{"type":"A","data":{ "x" : "\\u0041" , "1" : -0 }}]}'),
    ];
    for (const [i, body] of bodies.entries()) {
      const response = await rawRequest(port, 'POST', `${EVENTS}/${i + 1}/events`, {
        headers: { 'content-type': 'application/json' },
        body,
      });
      expect(response.status, response.text).toBe(201);
      const sent = JSON.parse(body.toString('utf8')) as { events: { data?: unknown; metadata?: unknown }[] };
      const [event] = (await http.store.get('billing', 'invoice', BigInt(i + 1))).events;
      expect(Buffer.from(event?.data ?? []).toString('hex')).toBe(
        Buffer.from(JSON.stringify(sent.events[0]?.data)).toString('hex'),
      );
      expect(Buffer.from(event?.metadata ?? []).toString('hex')).toBe(
        sent.events[0]?.metadata === undefined
          ? ''
          : Buffer.from(JSON.stringify(sent.events[0]?.metadata)).toString('hex'),
      );
    }
    // Bytes that are not UTF-8 would be stored as U+FFFD if decoded: they are refused, with or
    // without a JSON error besides, on the append route and on every other JSON body.
    const notUtf8 = [
      Buffer.concat([
        Buffer.from('{"events":[{"type":"A","data":"a'),
        Buffer.from([0x80, 0xf0, 0x9f, 0x98]),
        Buffer.from('b","metadata":{"k":"'),
        Buffer.from([0xff]),
        Buffer.from('"}}]}'),
      ]),
      Buffer.concat([
        Buffer.from('{"events":[{"type":"A","data":'),
        Buffer.from([0xc0, 0x80]),
        Buffer.from('}]}'),
      ]),
    ];
    for (const body of notUtf8) {
      const bad = await rawRequest(port, 'POST', `${EVENTS}/9/events`, {
        headers: { 'content-type': 'application/json' },
        body,
      });
      expect(bad.status).toBe(400);
      expect(errorOf(bad)).toMatchObject({
        code: 'INVALID_JSON',
        message: 'the JSON text is not valid UTF-8 (RFC 8259 requires UTF-8)',
      });
    }
    expect((await http.store.get('billing', 'invoice', 9n)).events).toEqual([]);
    const ack = await rawRequest(port, 'POST', '/v1/domains/billing/consumers/c/ack', {
      headers: { 'content-type': 'application/json' },
      body: Buffer.concat([Buffer.from('{"nextPosition":1,"x":"'), Buffer.from([0xff]), Buffer.from('"}')]),
    });
    expect(errorOf(ack)).toMatchObject({
      code: 'INVALID_JSON',
      message: expect.stringMatching(/not valid UTF-8/),
    });
  });
});

describe('GET /v1/domains/:domain/aggregates/:type/:id/events', () => {
  it('returns events in the form they were written, with all their fields', async () => {
    const { port } = await start();
    const json = { nested: [1, 'two', { three: null }], unicode: 'é✓' };
    const binary = Buffer.from([0, 1, 2, 255]).toString('base64');
    await postJson(port, `${EVENTS}/42/events`, {
      events: [
        { type: 'Json', data: json },
        { type: 'Bin', dataBase64: binary },
        { type: 'Empty' },
        { type: 'Str', data: 'text' },
        { type: 'Num', data: 12.5 },
      ],
    });
    const response = await rawRequest(port, 'GET', `${EVENTS}/42/events`);
    expect(response.status).toBe(200);
    const { version, events } = response.json();
    expect(version).toBe(5);
    expect(events.map((e: { data?: unknown; dataBase64?: string }) => e.data ?? e.dataBase64)).toEqual([
      json,
      binary,
      '',
      'text',
      12.5,
    ]);
    expect(events[0]).toMatchObject({ type: 'Json', version: 1, position: 0 });
    expect(Object.keys(events[1]).sort()).toEqual([
      'crc',
      'dataBase64',
      'generation',
      'metadataBase64',
      'position',
      'timestamp',
      'type',
      'version',
    ]);
    expect(events[1].metadataBase64).toBe('');
    expect(events[1].crc).toBe(crc32(new Uint8Array([0, 1, 2, 255])));
  });

  it('stores metadata and metadataBase64 beside the data and returns them by the data rule', async () => {
    const { port } = await start();
    const correlation = { correlationId: 'c-1', causationId: 'k-0', eventId: 'é✓' };
    const binary = Buffer.from([0, 1, 2, 255]).toString('base64');
    const spaced = Buffer.from('{ "a": 1 }').toString('base64');
    const data = { n: 1 };
    const crc = crc32(new TextEncoder().encode(JSON.stringify(data) + JSON.stringify(correlation)));
    const response = await postJson(port, `${EVENTS}/42/events`, {
      events: [
        { type: 'Json', data, metadata: correlation, crc },
        { type: 'Bin', dataBase64: binary, metadataBase64: binary },
        { type: 'Spaced', metadataBase64: spaced },
        { type: 'None', data: 'x' },
        { type: 'Text', metadata: 'plain' },
      ],
    });
    expect(response.status).toBe(201);
    const stored = (await http.store.get('billing', 'invoice', 42n)).events;
    expect(stored.map((e) => Buffer.from(e.metadata).toString())).toEqual([
      JSON.stringify(correlation),
      Buffer.from(binary, 'base64').toString(),
      '{ "a": 1 }',
      '',
      '"plain"',
    ]);
    expect(stored[0]!.crc).toBe(crc);
    const expected = [
      { metadata: correlation },
      { metadataBase64: binary },
      { metadataBase64: spaced },
      { metadataBase64: '' },
      { metadata: 'plain' },
    ];
    const pick = (e: Record<string, unknown>) =>
      'metadata' in e ? { metadata: e.metadata } : { metadataBase64: e.metadataBase64 };
    const instance = (await rawRequest(port, 'GET', `${EVENTS}/42/events`)).json();
    expect(instance.events.map(pick)).toEqual(expected);
    expect(instance.events[0]).toMatchObject({ data, crc });
    const domain = (await rawRequest(port, 'GET', '/v1/domains/billing/events')).json();
    expect(domain.events.map(pick)).toEqual(expected);
  });

  it('refuses bad metadata: both forms, bad base64, over the limit, a wrong crc', async () => {
    const { port } = await start();
    const post = (event: Record<string, unknown>) =>
      postJson(port, `${EVENTS}/1/events`, { events: [{ type: 'A' }, { type: 'A', ...event }] });
    const both = await post({ metadata: {}, metadataBase64: '' });
    expect(errorOf(both)).toMatchObject({ code: 'INVALID_EVENT', index: 1 });
    expect(errorOf(await post({ metadataBase64: 'not base64' })).code).toBe('INVALID_EVENT');
    const long = await post({ metadataBase64: Buffer.alloc(65_536).toString('base64') });
    expect(long.status).toBe(400);
    expect(errorOf(long)).toMatchObject({ code: 'EVENT_TOO_LARGE', index: 1 });
    expect(errorOf(long).message).toMatch(/metadata/);
    const dataOnly = crc32(new TextEncoder().encode('{}'));
    expect(errorOf(await post({ data: {}, metadata: { id: 1 }, crc: dataOnly })).code).toBe('CRC_MISMATCH');
    expect((await http.store.get('billing', 'invoice', 1n)).version).toBe(0);
    const fits = await post({ metadataBase64: Buffer.alloc(65_535, 7).toString('base64') });
    expect(fits.status).toBe(201);
  });

  it('reads back non-canonical JSON bytes as dataBase64, byte for byte', async () => {
    const { port } = await start();
    const spaced = Buffer.from('{ "a": 1 }').toString('base64');
    const bigNumber = Buffer.from('12345678901234567890').toString('base64');
    await postJson(port, `${EVENTS}/1/events`, {
      events: [
        { type: 'A', dataBase64: spaced },
        { type: 'B', dataBase64: bigNumber },
      ],
    });
    const { events } = (await rawRequest(port, 'GET', `${EVENTS}/1/events`)).json();
    expect(events.map((e: { dataBase64?: string }) => e.dataBase64)).toEqual([spaced, bigNumber]);
  });

  it('pages with fromVersion, toVersion and limit; 0/empty for a new instance and a domain with no events', async () => {
    const { port } = await start();
    await postJson(port, `${EVENTS}/1/events`, { events: [{ type: 'A' }, { type: 'B' }, { type: 'C' }] });
    const page = (
      await rawRequest(port, 'GET', `${EVENTS}/1/events?fromVersion=2&toVersion=3&limit=1`)
    ).json();
    expect(page.version).toBe(3);
    expect(page.events.map((e: { version: number }) => e.version)).toEqual([2]);
    expect((await rawRequest(port, 'GET', `${EVENTS}/2/events`)).json()).toEqual({
      version: 0,
      events: [],
      complete: true,
    });
    const unknown = await rawRequest(port, 'GET', '/v1/domains/nothing/aggregates/invoice/1/events');
    expect({ status: unknown.status, body: unknown.json() }).toEqual({
      status: 200,
      body: { version: 0, events: [], complete: true },
    });
  });

  it('pins to a generation', async () => {
    const { port } = await start();
    const first = (await postJson(port, `${EVENTS}/1/events`, { events: [{ type: 'A' }] })).json();
    await postJson(port, `${EVENTS}/1/events`, { events: [{ type: 'B' }] });
    const cut = (await rawRequest(port, 'GET', `${EVENTS}/1/events?atGeneration=${first.generation}`)).json();
    expect(cut.version).toBe(1);
  });
});

describe('string data on each surface', () => {
  it('the JSON API stores a JSON string as its JSON text; the client, like embedded, stores a string as its UTF-8', async () => {
    const { port, url } = await start();
    const store = http.store;
    await postJson(port, `${EVENTS}/1/events`, {
      events: [
        { type: 'Json', data: 'hello' },
        { type: 'Base64', dataBase64: Buffer.from('hello').toString('base64') },
      ],
    });
    const client = new HttpEventStore(url);
    await client.put('billing', 'invoice', 2n, [{ type: 'Client', data: 'hello' }]);
    await store.put('billing', 'invoice', 3n, [{ type: 'Embedded', data: 'hello' }]);
    const stored = (await store.read('billing')).events.map((e) => [
      e.type,
      new TextDecoder().decode(e.data),
    ]);
    expect(stored).toEqual([
      ['Json', '"hello"'],
      ['Base64', 'hello'],
      ['Client', 'hello'],
      ['Embedded', 'hello'],
    ]);
    // Read back over the JSON API: canonical JSON text as data, other bytes as dataBase64.
    const wire = (await rawRequest(port, 'GET', '/v1/domains/billing/events')).json();
    expect(wire.events.map((e: { data?: unknown; dataBase64?: string }) => e.data ?? e.dataBase64)).toEqual([
      'hello',
      'aGVsbG8=',
      'aGVsbG8=',
      'aGVsbG8=',
    ]);
    // And through the client, the same bytes as embedded.
    const viaClient = (await client.read('billing')).events.map((e) => new TextDecoder().decode(e.data));
    await client.close();
    expect(viaClient).toEqual(stored.map(([, data]) => data));
  });
});

describe('domains with no events yet, through the client', () => {
  it('read as empty and stay unlisted; a base URL that misses the API is NOT_FOUND, not empty', async () => {
    const { url } = await start();
    const client = new HttpEventStore(url);
    const wrong = new HttpEventStore(`${url}/wrong-prefix`);
    const empty = await client.read('fresh', { fromPosition: 3 });
    const instance = await client.get('fresh', 'a', 1n);
    let missed: unknown;
    try {
      await wrong.read('fresh');
    } catch (err) {
      missed = err;
    }
    await client.close();
    await wrong.close();
    expect({ empty, instance, known: client.hasDomain('fresh') }).toEqual({
      empty: { events: [], nextPosition: 3 },
      instance: { version: 0, events: [] },
      known: false,
    });
    expect(missed).toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('GET /v1/domains/:domain/events', () => {
  it('reads the domain log with aggregate fields, types, limit, nextPosition, time range and atGeneration', async () => {
    const { port } = await start();
    const r1 = (
      await postJson(port, `${EVENTS}/1/events`, { events: [{ type: 'A' }, { type: 'B' }] })
    ).json();
    await postJson(port, '/v1/domains/billing/aggregates/payment/18446744073709551615/events', {
      events: [{ type: 'B', data: [1] }],
    });
    const all = (await rawRequest(port, 'GET', '/v1/domains/billing/events')).json();
    expect(all.nextPosition).toBe(3);
    expect(
      all.events.map((e: Record<string, unknown>) => [e.position, e.type, e.aggregateType, e.aggregateId]),
    ).toEqual([
      [0, 'A', 'invoice', '1'],
      [1, 'B', 'invoice', '1'],
      [2, 'B', 'payment', '18446744073709551615'],
    ]);
    const onlyB = (await rawRequest(port, 'GET', '/v1/domains/billing/events?types=B,Nope&limit=1')).json();
    expect(onlyB.events.map((e: { position: number }) => e.position)).toEqual([1]);
    expect(onlyB.nextPosition).toBe(2);
    const rest = (
      await rawRequest(port, 'GET', `/v1/domains/billing/events?fromPosition=${onlyB.nextPosition}`)
    ).json();
    expect(rest.events.map((e: { position: number }) => e.position)).toEqual([2]);
    const pinned = (
      await rawRequest(port, 'GET', `/v1/domains/billing/events?atGeneration=${r1.generation}`)
    ).json();
    expect(pinned.events).toHaveLength(2);
    const later = (
      await rawRequest(port, 'GET', `/v1/domains/billing/events?fromTime=${r1.timestamp + 10_000_000}`)
    ).json();
    expect(later.events).toHaveLength(0);
    const earlier = (
      await rawRequest(port, 'GET', `/v1/domains/billing/events?toTime=${r1.timestamp}`)
    ).json();
    expect(earlier.events.length).toBeGreaterThanOrEqual(2);
    const none = await rawRequest(port, 'GET', '/v1/domains/none/events?fromPosition=7');
    expect({ status: none.status, body: none.json() }).toEqual({
      status: 200,
      body: { events: [], nextPosition: 7 },
    });
  });
});

describe('POST /v1/keys, GET /v1/domains, /health, /metrics', () => {
  it('makes unique decimal ids', async () => {
    const { port } = await start();
    const a = await rawRequest(port, 'POST', '/v1/keys');
    const b = await rawRequest(port, 'POST', '/v1/keys');
    expect(a.status).toBe(201);
    expect(a.json().id).toMatch(/^[1-9][0-9]*$/);
    expect(a.json().id).not.toBe(b.json().id);
  });

  it('lists domains with the generation', async () => {
    const { port } = await start();
    await postJson(port, `${EVENTS}/1/events`, { events: [{ type: 'A' }] });
    expect((await rawRequest(port, 'GET', '/v1/domains')).json()).toEqual({
      domains: ['billing'],
      generation: 1,
    });
  });

  it('reports health, and 503 with Retry-After once the store is closed', async () => {
    const { port } = await start();
    const ok = await rawRequest(port, 'GET', '/health');
    expect(ok.status).toBe(200);
    expect(ok.json()).toMatchObject({ status: 'ok' });
    await http.store.close();
    const down = await rawRequest(port, 'GET', '/health');
    expect(down.status).toBe(503);
    expect(errorOf(down).code).toBe('STORE_CLOSED');
    expect(down.headers['retry-after']).toBe('5');
  });

  it('exports Prometheus metrics: HTTP latency, appends, and store internals when the store has metrics()', async () => {
    const inner = new MemoryEventStore();
    const withMetrics = Object.assign(inner, {
      metrics: () => ({
        ringBytes: 65_536,
        ringUsedBytes: 1024,
        crcThreads: 2,
        crcUtilization: 0.25,
        fsyncs: 3,
      }),
    });
    const server = await http.start({}, withMetrics);
    await postJson(server.port, `${EVENTS}/1/events`, {
      events: [{ type: 'A', data: 'abc' }, { type: 'B' }],
    });
    const response = await rawRequest(server.port, 'GET', '/metrics');
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    const text = response.text;
    expect(text).toMatch(
      /ringstore_http_request_duration_seconds_count\{method="POST",route="\/v1\/domains\/:domain\/aggregates\/:type\/:id\/events",status="201"\} 1/,
    );
    expect(text).toMatch(/^ringstore_http_appended_events_total 2$/m);
    expect(text).toMatch(/^ringstore_http_appended_bytes_total 5$/m);
    await postJson(server.port, `${EVENTS}/1/events`, { events: [{ type: 'A', data: 'a', metadata: 'b' }] });
    expect((await rawRequest(server.port, 'GET', '/metrics')).text).toMatch(
      /^ringstore_http_appended_bytes_total 11$/m,
    );
    expect(text).toMatch(/^ringstore_ring_bytes 65536$/m);
    expect(text).toMatch(/^ringstore_crc_utilization_ratio 0.25$/m);
    expect(text).toMatch(/^ringstore_store_fsyncs_total 3$/m);
    expect(text).toMatch(/^ringstore_generation 1$/m);
    // What the store does not report has no sample (not 0): its HELP and TYPE lines only.
    expect(text).toMatch(/^# TYPE ringstore_store_appended_batches_total counter$/m);
    expect(text).not.toMatch(/^ringstore_store_appended_batches_total /m);
    expect(text).not.toMatch(/^ringstore_store_commits_total /m);
  });

  it('exports no store internals over a store without metrics()', async () => {
    const { port } = await start();
    const text = (await rawRequest(port, 'GET', '/metrics')).text;
    expect(text).toMatch(/^ringstore_generation 0$/m);
    for (const name of ['ringstore_ring_bytes', 'ringstore_crc_threads', 'ringstore_store_fsyncs_total']) {
      expect(text).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
      expect(text).not.toMatch(new RegExp(`^${name} `, 'm'));
    }
  });
});

describe('POST /v1/ingest', () => {
  const ndjson = { 'content-type': 'application/x-ndjson' };

  it('takes an id as a decimal string, or as a JSON number up to 2^53 - 1', async () => {
    const { port } = await start();
    const line = (id: unknown) =>
      JSON.stringify({ domain: 'billing', aggregateType: 'invoice', id, events: [{ type: 'A' }] });
    // 2^53 is written out: JSON.stringify of the number would print it the same way.
    const body = `${[line('7'), line(8), line(Number.MAX_SAFE_INTEGER)].join('\n')}\n${line(1).replace('1,', '9007199254740992,')}\n`;
    const response = await rawRequest(port, 'POST', '/v1/ingest', { headers: ndjson, body });
    const results = response.text
      .trim()
      .split('\n')
      .map((text) => JSON.parse(text) as { ok: boolean; error?: { code: string } });
    expect(results.map((r) => r.ok)).toEqual([true, true, true, false]);
    expect(results[3]?.error?.code).toBe('INVALID_ID');
  });

  it('answers one result per line, in order, skipping blank lines', async () => {
    const { port } = await start();
    const lines = [
      { domain: 'billing', aggregateType: 'invoice', id: '1', events: [{ type: 'A', data: { x: 1 } }] },
      { domain: 'billing', aggregateType: 'invoice', id: '1', events: [{ type: 'B' }], expectedVersion: 1 },
      { domain: 'billing', aggregateType: 'invoice', id: '1', events: [{ type: 'C' }], expectedVersion: 0 },
      { domain: 'BAD', aggregateType: 'invoice', id: '1', events: [{ type: 'C' }] },
      { domain: 'billing', aggregateType: 'invoice', id: 2, events: [{ type: 'D' }], idempotencyKey: 'i' },
      { domain: 'billing', aggregateType: 'invoice', id: 2, events: [{ type: 'D' }], idempotencyKey: 'i' },
    ];
    const body = `${lines.map((l) => JSON.stringify(l)).join('\n')}\n\n{not json\r\n[1]\n`;
    const response = await rawRequest(port, 'POST', '/v1/ingest', { headers: ndjson, body });
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/x-ndjson/);
    const results = response.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(results.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual([
      'ok',
      'ok',
      'VERSION_CONFLICT',
      'INVALID_NAME',
      'ok',
      'ok',
      'INVALID_JSON',
      'INVALID_BATCH',
    ]);
    expect(results[1]).toMatchObject({ firstVersion: 2, lastVersion: 2 });
    expect(results[2].error.actualVersion).toBe(2);
    expect(results[5]).toMatchObject({ replayed: true, firstPosition: results[4].firstPosition });
    expect((await http.store.read('billing')).events).toHaveLength(3);
  });

  it('stores each line as the compact UTF-8 of its text; a line that is not UTF-8 is refused alone', async () => {
    const { port } = await start();
    const line = (id: number, data: Buffer) =>
      Buffer.concat([
        Buffer.from(
          `{"domain":"billing","aggregateType":"invoice","id":"${id}","events":[{"type":"A","data":`,
        ),
        data,
        Buffer.from('}]}\n'),
      ]);
    const datas = [
      Buffer.from('{"é":["中😀",1.50]}'),
      Buffer.concat([Buffer.from('"x'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('y"')]),
      Buffer.from([0xf5]),
    ];
    const body = Buffer.concat(datas.map((data, i) => line(i + 1, data)));
    const response = await rawRequest(port, 'POST', '/v1/ingest', { headers: ndjson, body });
    const results = response.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(results.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(['ok', 'INVALID_JSON', 'INVALID_JSON']);
    expect(results[1].error.message).toBe('the JSON text is not valid UTF-8 (RFC 8259 requires UTF-8)');
    expect((await http.store.get('billing', 'invoice', 2n)).events).toEqual([]);
    const [event] = (await http.store.get('billing', 'invoice', 1n)).events;
    expect(Buffer.from(event?.data ?? []).toString('hex')).toBe(
      Buffer.from(JSON.stringify(JSON.parse((datas[0] as Buffer).toString('utf8')))).toString('hex'),
    );
  });

  it('takes metadata and metadataBase64 on each line', async () => {
    const { port } = await start();
    const lines = [
      {
        domain: 'billing',
        aggregateType: 'invoice',
        id: '1',
        events: [
          { type: 'A', data: { x: 1 }, metadata: { correlationId: 'c' } },
          { type: 'B', metadataBase64: Buffer.from([255]).toString('base64') },
        ],
      },
      { domain: 'billing', aggregateType: 'invoice', id: '2', events: [{ type: 'A', metadataBase64: '!' }] },
    ];
    const body = `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`;
    const response = await rawRequest(port, 'POST', '/v1/ingest', { headers: ndjson, body });
    const results = response.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(results.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(['ok', 'INVALID_EVENT']);
    const { events } = await http.store.read('billing');
    expect(events.map((e) => Buffer.from(e.metadata).toString('hex'))).toEqual([
      Buffer.from('{"correlationId":"c"}').toString('hex'),
      'ff',
    ]);
  });

  it('rejects hostile lines one by one and stores nothing from them', async () => {
    const { port } = await start();
    const base = '"domain":"d","aggregateType":"a","events":[{"type":"A"}]';
    const lines = [
      `{${base},"id":1.5}`,
      `{${base},"id":-1}`,
      `{${base},"id":"1e3"}`,
      `{${base},"id":1e400}`,
      `{${base},"id":"18446744073709551616"}`,
      `{${base},"id":"1","expectedVersion":NaN}`,
      `{${base},"id":"1","expectedVersion":-1}`,
      `{${base},"id":"1","expectedVersion":2.5}`,
      `{${base},"id":"1","__proto__":{"x":1}}`,
      `{"domain":"..","aggregateType":"a","id":"1","events":[{"type":"A"}]}`,
      `{"domain":"d","aggregateType":"a/../b","id":"1","events":[{"type":"A"}]}`,
      `{"domain":"d\\u0000","aggregateType":"a","id":"1","events":[{"type":"A"}]}`,
      `{${base.replace('"type":"A"', `"type":"A","data":${'['.repeat(80)}${']'.repeat(80)}`)},"id":"1"}`,
      `{${base},"id":"1","extra":true}`,
    ];
    const response = await rawRequest(port, 'POST', '/v1/ingest', {
      headers: ndjson,
      body: lines.join('\n'),
    });
    const codes = response.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).error?.code);
    expect(codes).toEqual([
      'INVALID_ID',
      'INVALID_ID',
      'INVALID_ID',
      'INVALID_ID',
      'INVALID_ID',
      'INVALID_JSON',
      'INVALID_VERSION',
      'INVALID_VERSION',
      'INVALID_JSON',
      'INVALID_NAME',
      'INVALID_NAME',
      'INVALID_NAME',
      'INVALID_JSON',
      'INVALID_BATCH',
    ]);
    expect(http.store.domains()).toEqual([]);
  });

  it('keeps at most ingestInFlight puts unsettled per request, and reads no further meanwhile', async () => {
    let started = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const gated = new (class extends MemoryEventStore {
      override async put(...args: Parameters<MemoryEventStore['put']>) {
        started++;
        await gate;
        return super.put(...args);
      }
    })();
    const server = await http.start({ ingestInFlight: 8 }, gated);
    const line = (i: number) =>
      `${JSON.stringify({ domain: 'gate', aggregateType: 'item', id: String(i + 1), events: [{ type: 'A', data: 'x'.repeat(200) }] })}\n`;
    const body = Array.from({ length: 3000 }, (_, i) => line(i)).join('');
    const pending = rawRequest(server.port, 'POST', '/v1/ingest', { headers: ndjson, body });
    // Eight start (however slow the machine), and no ninth while they are unsettled.
    const deadline = Date.now() + 10_000;
    while (started < 8 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(started).toBe(8);
    release();
    const response = await pending;
    const results = response.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(results).toHaveLength(3000);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(results.map((r) => r.firstPosition)).toEqual(Array.from({ length: 3000 }, (_, i) => i));
  });

  it('streams a body far larger than the body limit, and reports an over-long line without stopping', async () => {
    const { port } = await start({ bodyLimit: 4096 });
    const good = (i: number) =>
      JSON.stringify({
        domain: 'bulk',
        aggregateType: 'item',
        id: String(i + 1),
        events: [{ type: 'Added', data: { i } }],
      });
    const lines: string[] = [];
    for (let i = 0; i < 2000; i++) lines.push(good(i));
    lines.splice(
      1000,
      0,
      JSON.stringify({
        domain: 'bulk',
        aggregateType: 'item',
        id: '1',
        events: [{ type: 'X', data: 'y'.repeat(5000) }],
      }),
    );
    const body = `${lines.join('\n')}\n`;
    expect(body.length).toBeGreaterThan(20 * 4096);
    const response = await rawRequest(port, 'POST', '/v1/ingest', { headers: ndjson, body });
    const results = response.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(results).toHaveLength(2001);
    expect(results[1000].error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(results.filter((r) => r.ok)).toHaveLength(2000);
    expect((await http.store.read('bulk', { limit: 5000 })).events).toHaveLength(2000);
  });
});

describe('server settings', () => {
  it("sets explicit timeouts and a connection cap (fastify leaves Node's request timeout off)", async () => {
    const { app } = await start({
      headersTimeoutMs: 7000,
      requestTimeoutMs: 9000,
      keepAliveTimeoutMs: 3000,
      maxConnections: 12,
    });
    expect(app.server.headersTimeout).toBe(7000);
    expect(app.server.requestTimeout).toBe(9000);
    expect(app.server.keepAliveTimeout).toBe(3000);
    expect(app.server.maxConnections).toBe(12);
  });

  it('rejects invalid options with INVALID_OPTION', async () => {
    for (const bad of [
      { bodyLimit: 0 },
      { maxConnections: 1.5 },
      { headersTimeoutMs: 10, requestTimeoutMs: 5 },
    ]) {
      await expect(startServer(http.store, bad)).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    }
  });
});

describe('shutdown', () => {
  it('sheds requests that arrive during close with 503 STORE_CLOSED in the API shape, after finishing those in flight', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered = false;
    const gated = new (class extends MemoryEventStore {
      override async put(...args: Parameters<MemoryEventStore['put']>) {
        entered = true;
        await gate;
        return super.put(...args);
      }
    })();
    const running = await http.start({}, gated);
    const body = JSON.stringify({ events: [{ type: 'A' }] });
    const socket = connect(running.port, '127.0.0.1');
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      received += chunk;
    });
    const yieldOnce = () => new Promise((resolve) => setImmediate(resolve));
    socket.write(
      `POST ${EVENTS}/1/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
    );
    while (!entered) await yieldOnce();
    const closed = running.close();
    // The server stops listening after the preClose hooks ran: from then on, shedding is on. The
    // socket is busy with the first request, so close() keeps it open and a second request on it
    // reaches the server.
    while (running.app.server.listening) await yieldOnce();
    socket.write('GET /health HTTP/1.1\r\nhost: x\r\n\r\n');
    // Give the second request time to reach the server before the first one can complete.
    await new Promise((resolve) => setTimeout(resolve, 200));
    release();
    await closed;
    await new Promise((resolve) => socket.once('close', resolve));
    const [first, second] = received.split(/(?=HTTP\/1\.1 )/);
    expect(first).toMatch(/^HTTP\/1\.1 201/);
    expect(second).toMatch(/^HTTP\/1\.1 503/);
    expect(second).toMatch(/retry-after: 5/i);
    expect(second).toMatch(/connection: close/i);
    expect(second).toContain('"code":"STORE_CLOSED"');
    expect((await gated.get('billing', 'invoice', 1n)).version).toBe(1);
  });
});
