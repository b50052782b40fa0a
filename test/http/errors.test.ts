import { connect } from 'node:net';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/api/event-store.js';
import { HttpEventStore } from '../../src/api/http/client.js';
import { ERROR_CATALOG, ERROR_CODES, type ErrorCode, RingStoreError } from '../../src/errors.js';
import { MemoryEventStore } from '../../src/model/memory-store.js';
import { errorOf, postJson, type RawResponse, rawRequest, serverPerTest } from './helpers.js';

const PATH = '/v1/domains/billing/aggregates/invoice/1/events';

const http = serverPerTest();
const start = (options = {}) => http.start(options);

/** Every rejected request: a 4xx with the one error shape, no stack, no file path; nothing stored. */
function expectRejected(response: RawResponse, status: number, code: string): void {
  expect({ status: response.status, text: response.text.slice(0, 300) }).toMatchObject({ status });
  expect(errorOf(response).code).toBe(code);
  expect(response.text).not.toMatch(/\/work\/|node_modules|\bat .*:\d+:\d+/);
}

function expectNothingStored(): void {
  expect(http.store.domains()).toEqual([]);
  expect(http.store.generation).toBe(0);
}

describe('hostile and invalid JSON bodies', () => {
  const cases: Array<[string, string, string]> = [
    ['not JSON', '{"events": [', 'INVALID_JSON'],
    ['NaN literal', '{"events":[{"type":"A"}],"expectedVersion":NaN}', 'INVALID_JSON'],
    ['empty body', '', 'INVALID_JSON'],
    ['__proto__ key at the top', '{"events":[{"type":"A"}],"__proto__":{"admin":true}}', 'INVALID_JSON'],
    ['__proto__ key inside data', '{"events":[{"type":"A","data":{"__proto__":{"x":1}}}]}', 'INVALID_JSON'],
    [
      'constructor.prototype',
      '{"events":[{"type":"A","data":{"constructor":{"prototype":{"x":1}}}}]}',
      'INVALID_JSON',
    ],
    [
      'deep nesting in data',
      `{"events":[{"type":"A","data":${'['.repeat(100)}${']'.repeat(100)}}]}`,
      'INVALID_JSON',
    ],
    ['extreme nesting', `${'['.repeat(200_000)}${']'.repeat(200_000)}`, 'INVALID_JSON'],
    ['a JSON array body', '[{"type":"A"}]', 'INVALID_BATCH'],
    ['a JSON string body', '"events"', 'INVALID_BATCH'],
    ['unknown top-level field', '{"events":[{"type":"A"}],"expectedversion":1}', 'INVALID_BATCH'],
    ['no events', '{"events":[]}', 'INVALID_BATCH'],
    ['events not an array', '{"events":{"type":"A"}}', 'INVALID_BATCH'],
    ['an event that is not an object', '{"events":[1]}', 'INVALID_EVENT'],
    ['unknown event field', '{"events":[{"type":"A","meta":1}]}', 'INVALID_EVENT'],
    ['data and dataBase64', '{"events":[{"type":"A","data":1,"dataBase64":"AA=="}]}', 'INVALID_EVENT'],
    ['bad base64', '{"events":[{"type":"A","dataBase64":"A*=="}]}', 'INVALID_EVENT'],
    ['unpadded base64', '{"events":[{"type":"A","dataBase64":"AAA"}]}', 'INVALID_EVENT'],
    ['crc as string', '{"events":[{"type":"A","crc":"1"}]}', 'INVALID_EVENT'],
    ['crc as float', '{"events":[{"type":"A","crc":1.5}]}', 'INVALID_EVENT'],
    ['bad event type', '{"events":[{"type":"9bad"}]}', 'INVALID_NAME'],
    ['event type not a string', '{"events":[{"type":7}]}', 'INVALID_NAME'],
    ['float version', '{"events":[{"type":"A"}],"expectedVersion":1.5}', 'INVALID_VERSION'],
    ['negative version', '{"events":[{"type":"A"}],"expectedVersion":-1}', 'INVALID_VERSION'],
    ['huge version', '{"events":[{"type":"A"}],"expectedVersion":1e400}', 'INVALID_VERSION'],
    ['unsafe version', '{"events":[{"type":"A"}],"expectedVersion":9007199254740993}', 'INVALID_VERSION'],
    // JSON.stringify would store these numbers (Infinity once parsed) as null.
    ['data number past a double', '{"events":[{"type":"A","data":1e999}]}', 'INVALID_EVENT'],
    ['nested number past a double', '{"events":[{"type":"A","metadata":{"a":[-1E400]}}]}', 'INVALID_EVENT'],
    ['version as string', '{"events":[{"type":"A"}],"expectedVersion":"1"}', 'INVALID_VERSION'],
    ['version null', '{"events":[{"type":"A"}],"expectedVersion":null}', 'INVALID_VERSION'],
    ['empty idempotency key', '{"events":[{"type":"A"}],"idempotencyKey":""}', 'INVALID_IDEMPOTENCY_KEY'],
    [
      'long idempotency key',
      `{"events":[{"type":"A"}],"idempotencyKey":"${'k'.repeat(65)}"}`,
      'INVALID_IDEMPOTENCY_KEY',
    ],
    ['idempotency key number', '{"events":[{"type":"A"}],"idempotencyKey":5}', 'INVALID_IDEMPOTENCY_KEY'],
    [
      'idempotency key with a lone surrogate',
      '{"events":[{"type":"A"}],"idempotencyKey":"k\\ud800"}',
      'INVALID_IDEMPOTENCY_KEY',
    ],
  ];
  for (const [name, body, code] of cases) {
    it(`rejects ${name} with 400 ${code}`, async () => {
      const { port } = await start();
      expectRejected(await postJson(port, PATH, body), 400, code);
      expectNothingStored();
    });
  }
});

describe('hostile names and ids in the path', () => {
  const paths: Array<[string, number, string]> = [
    ['/v1/domains/../aggregates/invoice/1/events', 400, 'INVALID_NAME'],
    ['/v1/domains/..%2F..%2Fetc/aggregates/invoice/1/events', 400, 'INVALID_NAME'],
    ['/v1/domains/%2e%2e/aggregates/invoice/1/events', 400, 'INVALID_NAME'],
    ['/v1/domains/billing/aggregates/..%2f..%2fpasswd/1/events', 400, 'INVALID_NAME'],
    ['/v1/domains/bil%00ling/aggregates/invoice/1/events', 400, 'INVALID_NAME'],
    ['/v1/domains/Billing/aggregates/invoice/1/events', 400, 'INVALID_NAME'],
    ['/v1/domains/billing/aggregates/inv%5Coice/1/events', 400, 'INVALID_NAME'],
    [`/v1/domains/${'a'.repeat(64)}/aggregates/invoice/1/events`, 400, 'INVALID_NAME'],
    ['/v1/domains/billing/aggregates/invoice/0/events', 400, 'INVALID_ID'],
    ['/v1/domains/billing/aggregates/invoice/-1/events', 400, 'INVALID_ID'],
    ['/v1/domains/billing/aggregates/invoice/1.5/events', 400, 'INVALID_ID'],
    ['/v1/domains/billing/aggregates/invoice/1e3/events', 400, 'INVALID_ID'],
    ['/v1/domains/billing/aggregates/invoice/01/events', 400, 'INVALID_ID'],
    ['/v1/domains/billing/aggregates/invoice/NaN/events', 400, 'INVALID_ID'],
    ['/v1/domains/billing/aggregates/invoice/18446744073709551616/events', 400, 'INVALID_ID'],
    ['/v1/domains/billing/aggregates/invoice/99999999999999999999999/events', 400, 'INVALID_ID'],
    ['/v1/domains/billing/aggregates/invoice/1%00/events', 400, 'INVALID_ID'],
    ['/v1/domains/billing/aggregates/invoice/%ZZ/events', 400, 'BAD_REQUEST'],
    [`/v1/domains/${'a'.repeat(500)}/aggregates/invoice/1/events`, 400, 'INVALID_NAME'],
    [`/v1/domains/billing/aggregates/${'a'.repeat(10_000)}/1/events`, 400, 'INVALID_NAME'],
    [`/v1/domains/billing/aggregates/invoice/${'9'.repeat(10_000)}/events`, 400, 'INVALID_ID'],
    ['/v1/domains/billing/aggregates/invoice/1/events/extra', 404, 'NOT_FOUND'],
  ];
  for (const [path, status, code] of paths) {
    it(`POST and GET ${path.slice(0, 70)} → ${status} ${code}`, async () => {
      const { port } = await start();
      expectRejected(await postJson(port, path, { events: [{ type: 'A' }] }), status, code);
      expectRejected(await rawRequest(port, 'GET', path), status, code);
      expectNothingStored();
    });
  }
});

describe('hostile query strings', () => {
  const queries: Array<[string, string]> = [
    ['/v1/domains/billing/events?fromPosition=-1', 'INVALID_QUERY'],
    ['/v1/domains/billing/events?fromPosition=1.5', 'INVALID_QUERY'],
    ['/v1/domains/billing/events?fromPosition=NaN', 'INVALID_QUERY'],
    ['/v1/domains/billing/events?fromPosition=1e3', 'INVALID_QUERY'],
    ['/v1/domains/billing/events?fromPosition=99999999999999999999', 'INVALID_QUERY'],
    ['/v1/domains/billing/events?fromPosition=1&fromPosition=2', 'INVALID_QUERY'],
    ['/v1/domains/billing/events?limit=100001', 'INVALID_QUERY'],
    ['/v1/domains/billing/events?position=1', 'INVALID_QUERY'],
    ['/v1/domains/billing/events?types=', 'INVALID_QUERY'],
    ['/v1/domains/billing/events?types=ok,9bad', 'INVALID_NAME'],
    ['/v1/domains/billing/events?verifyCrc=yes', 'INVALID_QUERY'],
    [`${PATH}?fromVersion=-3`, 'INVALID_QUERY'],
    [`${PATH}?limit=100001`, 'INVALID_QUERY'],
    [`${PATH}?atGeneration=x`, 'INVALID_QUERY'],
    ['/v1/domains/billing/subscribe?fromPosition=-1', 'INVALID_QUERY'],
  ];
  for (const [path, code] of queries) {
    it(`GET ${path} → 400 ${code}, before and after the domain exists`, async () => {
      const { port } = await start();
      expectRejected(await rawRequest(port, 'GET', path), 400, code);
      await http.store.put('billing', 'invoice', 1n, [{ type: 'A' }]);
      expectRejected(await rawRequest(port, 'GET', path), 400, code);
    });
  }

  it('rejects a bad Last-Event-ID, also the last safe integer (no position follows it)', async () => {
    const { port } = await start();
    for (const id of ['-5', String(Number.MAX_SAFE_INTEGER)]) {
      const response = await rawRequest(port, 'GET', '/v1/domains/billing/subscribe', {
        headers: { 'last-event-id': id },
      });
      expectRejected(response, 400, 'INVALID_QUERY');
    }
  });

  it('answers HEAD of the subscribe route with 404 instead of a stream that never flushes', async () => {
    const { port } = await start();
    expect((await rawRequest(port, 'HEAD', '/v1/domains/billing/subscribe')).status).toBe(404);
  });
});

describe('limits and content types', () => {
  it('413 for a body over the limit (default 1 MiB), nothing stored', async () => {
    const { port } = await start();
    const big = { events: [{ type: 'A', data: 'x'.repeat(1024 * 1024) }] };
    expectRejected(await postJson(port, PATH, big), 413, 'PAYLOAD_TOO_LARGE');
    expectNothingStored();
  });

  it('honours a configured body limit', async () => {
    const { port } = await start({ bodyLimit: 1000 });
    expectRejected(
      await postJson(port, PATH, { events: [{ type: 'A', data: 'x'.repeat(1000) }] }),
      413,
      'PAYLOAD_TOO_LARGE',
    );
    expect((await postJson(port, PATH, { events: [{ type: 'A', data: 'x'.repeat(100) }] })).status).toBe(201);
  });

  it('400 EVENT_TOO_LARGE for an event over 65535 bytes, 400 BATCH_TOO_LARGE for too many events', async () => {
    const { port } = await start();
    const over = Buffer.alloc(65_536, 7).toString('base64');
    expectRejected(
      await postJson(port, PATH, { events: [{ type: 'A', dataBase64: over }] }),
      400,
      'EVENT_TOO_LARGE',
    );
    const many = { events: Array.from({ length: 10_001 }, () => ({ type: 'A' })) };
    expectRejected(await postJson(port, PATH, many), 400, 'BATCH_TOO_LARGE');
    expectNothingStored();
    const max = Buffer.alloc(65_535, 7).toString('base64');
    expect((await postJson(port, PATH, { events: [{ type: 'A', dataBase64: max }] })).status).toBe(201);
  });

  it('415 for wrong or missing content types, on both write routes', async () => {
    const { port } = await start();
    const body = JSON.stringify({ events: [{ type: 'A' }] });
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/jsonx',
      'application/x-ndjson',
      // A body declared in another charset would be stored as other characters.
      'application/json; charset=iso-8859-1',
      'application/json;charset="windows-1252"',
    ]) {
      expectRejected(
        await rawRequest(port, 'POST', PATH, { headers: { 'content-type': type }, body }),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      );
    }
    expectRejected(await rawRequest(port, 'POST', PATH, { body }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    expectRejected(
      await rawRequest(port, 'POST', '/v1/ingest', { headers: { 'content-type': 'application/json' }, body }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    for (const type of [
      'application/json; charset=utf-8',
      'Application/JSON; Charset="UTF-8"',
      'application/json; charset=us-ascii',
    ]) {
      const answer = await rawRequest(port, 'POST', PATH, { headers: { 'content-type': type }, body });
      expect(answer.status, type).toBe(201);
    }
  });

  it('400 BAD_REQUEST for a lying Content-Length', async () => {
    const { port } = await start();
    const response = await rawRequest(port, 'POST', PATH, {
      headers: { 'content-type': 'application/json', 'content-length': '5' },
      body: '{"events":[{"type":"A"}]}',
    });
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
    expectNothingStored();
  });

  it('404 NOT_FOUND in the error shape for unknown routes and methods', async () => {
    const { port } = await start();
    expectRejected(await rawRequest(port, 'GET', '/v2/nothing'), 404, 'NOT_FOUND');
    expectRejected(await rawRequest(port, 'DELETE', PATH), 404, 'NOT_FOUND');
  });
});

/** A store whose puts fail with a chosen error: exercises the 503 and 500 answers. */
function failingStore(error: unknown): EventStore {
  return new (class extends MemoryEventStore {
    override async put(): Promise<never> {
      throw error;
    }
  })();
}

describe('503 and 500 answers', () => {
  it('BACKPRESSURE: 503 with Retry-After, health stays ok', async () => {
    const server = await http.start(
      { retryAfterSeconds: 2 },
      failingStore(new RingStoreError('BACKPRESSURE')),
    );
    const response = await postJson(server.port, PATH, { events: [{ type: 'A' }] });
    expectRejected(response, 503, 'BACKPRESSURE');
    expect(response.headers['retry-after']).toBe('2');
    expect((await rawRequest(server.port, 'GET', '/health')).status).toBe(200);
  });

  it('STORE_FAILED: 503 with Retry-After, and health turns 503 for good', async () => {
    const server = await http.start({}, failingStore(new RingStoreError('STORE_FAILED')));
    const response = await postJson(server.port, PATH, { events: [{ type: 'A' }] });
    expectRejected(response, 503, 'STORE_FAILED');
    expect(response.headers['retry-after']).toBe('30');
    const health = await rawRequest(server.port, 'GET', '/health');
    expectRejected(health, 503, 'STORE_FAILED');
    const ingest = await rawRequest(server.port, 'POST', '/v1/ingest', {
      headers: { 'content-type': 'application/x-ndjson' },
      body: '{"domain":"d","aggregateType":"a","id":"1","events":[{"type":"A"}]}\n',
    });
    expect(JSON.parse(ingest.text).error.code).toBe('STORE_FAILED');
  });

  it('server-side catalog errors go out with the catalog text only, never file names or offsets', async () => {
    const corrupt = new RingStoreError(
      'CORRUPT_DATA',
      'bad CRC in /var/lib/ringstore/billing/index at 4096',
      {
        file: '/var/lib/ringstore/billing/index',
        offset: 4096,
      },
    );
    for (const error of [
      corrupt,
      new RingStoreError('STORE_FAILED', 'fsync failed on /var/lib/ringstore/x.0'),
    ]) {
      const server = await http.start({}, failingStore(error));
      const response = await postJson(server.port, PATH, { events: [{ type: 'A' }] });
      expect(errorOf(response)).toEqual({
        code: error.code,
        message: ERROR_CATALOG[error.code].message,
        requestId: expect.any(String),
      });
      expect(response.text).not.toContain('/var/lib');
    }
  });

  it("health reads a store's failed flag without any request having failed", async () => {
    const failed = new (class extends MemoryEventStore {
      get failed(): boolean {
        return true;
      }
    })();
    const server = await http.start({}, failed);
    const health = await rawRequest(server.port, 'GET', '/health');
    expectRejected(health, 503, 'STORE_FAILED');
    expect(health.headers['retry-after']).toBe('30');
  });

  it('an unexpected store error is a 500 INTERNAL without its message, stack or paths', async () => {
    const server = await http.start({}, failingStore(new Error('ENOENT: /secret/path/file.dat')));
    const response = await postJson(server.port, PATH, { events: [{ type: 'A' }] });
    expect(response.status).toBe(500);
    expect(errorOf(response)).toEqual({
      code: 'INTERNAL',
      message: 'internal error',
      requestId: expect.any(String),
    });
    expect(response.text).not.toContain('secret');
  });
});

/** A log destination that keeps the lines written to it. */
function logLines(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((line) => line.length > 0),
      );
      done();
    },
  });
  return { lines, stream };
}

describe('request ids', () => {
  it('every error answer carries its own request id in the body and the header, the id the log names', async () => {
    const { lines, stream } = logLines();
    const server = await http.start(
      { logger: { level: 'error', stream } },
      failingStore(new Error('disk on fire')),
    );
    const failed = await postJson(server.port, PATH, { events: [{ type: 'A' }] });
    const missing = await rawRequest(server.port, 'GET', '/v1/nowhere');
    const badJson = await postJson(server.port, PATH, '{"events": [');
    const badUrl = await rawRequest(server.port, 'GET', '/v1/domains/%E0%A4%A/events');
    const ids = [failed, missing, badJson, badUrl].map((response) => errorOf(response).requestId);
    expect(new Set(ids).size).toBe(4);
    const logged = lines.map((line) => JSON.parse(line) as { reqId?: unknown; msg?: string });
    expect(logged.filter((entry) => entry.msg === 'request failed').map((entry) => entry.reqId)).toEqual([
      ids[0],
    ]);
  });

  it('a store that throws a value which throws when read gets 500 INTERNAL in the API shape, logged', async () => {
    const { lines, stream } = logLines();
    const unreadable = new Proxy(
      {},
      {
        get() {
          throw new Error('get trap');
        },
        getPrototypeOf() {
          throw new Error('getPrototypeOf trap');
        },
        ownKeys() {
          throw new Error('ownKeys trap');
        },
      },
    );
    const server = await http.start({ logger: { level: 'error', stream } }, failingStore(unreadable));
    const response = await postJson(server.port, PATH, { events: [{ type: 'A' }] });
    expect(response.status).toBe(500);
    expect(errorOf(response)).toMatchObject({ code: 'INTERNAL', message: ERROR_CATALOG.INTERNAL.message });
    expect(response.text).not.toContain('trap');
    const logged = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(logged).toEqual([
      expect.objectContaining({
        level: 50,
        code: 'INTERNAL',
        reqId: errorOf(response).requestId,
        msg: 'request failed with a value that cannot be read',
      }),
    ]);
  });

  it('a wait that ran out (APPLY_TIMEOUT, 504) is logged at warn with its reason, without a stack', async () => {
    const { lines, stream } = logLines();
    const server = await http.start(
      { logger: { level: 'warn', stream } },
      failingStore(new RingStoreError('APPLY_TIMEOUT', 'domain d holds no position 9')),
    );
    const response = await postJson(server.port, PATH, { events: [{ type: 'A' }] });
    expect(response.status).toBe(504);
    const logged = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const failures = logged.filter((entry) => entry.msg === 'request failed');
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({
      level: 40,
      code: 'APPLY_TIMEOUT',
      reason: 'domain d holds no position 9',
      reqId: errorOf(response).requestId,
    });
    expect(JSON.stringify(failures[0])).not.toContain('stack');
  });

  it('the client keeps the request id of an error answer in the error details', async () => {
    const server = await http.start();
    const client = new HttpEventStore(server.url);
    let caught: unknown;
    try {
      await client.put('d', 'a', 1n, [{ type: 'A' }], { expectedVersion: 3 });
    } catch (err) {
      caught = err;
    }
    await client.close();
    expect(caught).toMatchObject({ code: 'VERSION_CONFLICT', details: { actualVersion: 0 } });
    expect((caught as RingStoreError).details.requestId).toEqual(expect.any(String));
  });

  it('the client refuses misspelt options as the embedded API does, before any request', async () => {
    const server = await http.start();
    const client = new HttpEventStore(server.url);
    try {
      await client.put('d', 'a', 1n, [{ type: 'A' }]);
      await expect(
        client.put('d', 'a', 1n, [{ type: 'B' }], { expectedversion: 0 } as never),
      ).rejects.toMatchObject({ code: 'INVALID_BATCH', details: { option: 'expectedversion' } });
      await expect(client.get('d', 'a', 1n, { fromversion: 2 } as never)).rejects.toMatchObject({
        code: 'INVALID_QUERY',
      });
      await expect(client.read('d', { Types: ['A'] } as never)).rejects.toMatchObject({
        code: 'INVALID_QUERY',
      });
      expect((await client.get('d', 'a', 1n)).version).toBe(1);
    } finally {
      await client.close();
    }
  });
});

/** Sends `request` as raw bytes and returns everything the server answers until it closes. */
function rawExchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      answer += chunk;
    });
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
  });
}

describe('requests the HTTP parser refuses', () => {
  it('get the API error shape (400 BAD_REQUEST, 431 HEADERS_TOO_LARGE), and nothing is stored', async () => {
    const { port } = await start();
    const requests: [string, string, ErrorCode][] = [
      [
        `POST ${PATH} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: abc\r\n\r\n{}`,
        '400 Bad Request',
        'BAD_REQUEST',
      ],
      [
        `POST ${PATH} HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}`,
        '400 Bad Request',
        'BAD_REQUEST',
      ],
      ['GET /v1/domains HTTP/1.1\r\nbad header: 1\r\n\r\n', '400 Bad Request', 'BAD_REQUEST'],
      [
        `GET /v1/domains HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`,
        '431 Request Header Fields Too Large',
        'HEADERS_TOO_LARGE',
      ],
    ];
    for (const [request, status, code] of requests) {
      const answer = await rawExchange(port, request);
      const [head = '', body = ''] = answer.split('\r\n\r\n');
      expect(head.split('\r\n')[0], request.slice(0, 60)).toBe(`HTTP/1.1 ${status}`);
      expect(JSON.parse(body)).toEqual({ error: { code, message: ERROR_CATALOG[code].message } });
    }
    expectNothingStored();
  });
});

describe('every catalog code', () => {
  it('reaches the client with its catalog status, code and, for 503, Retry-After', async () => {
    for (const code of ERROR_CODES) {
      const server = await http.start({}, failingStore(new RingStoreError(code)));
      const response = await postJson(server.port, PATH, { events: [{ type: 'A' }] });
      expect({ code, status: response.status }).toEqual({ code, status: ERROR_CATALOG[code].status });
      expect(errorOf(response).code).toBe(code);
      expect(response.headers['retry-after'] !== undefined).toBe(ERROR_CATALOG[code].status === 503);
    }
  });
});

describe('batch byte limit', () => {
  it('400 BATCH_TOO_LARGE for more than 4 MiB of data in one batch, when the body limit allows the body', async () => {
    const { port } = await start({ bodyLimit: 8 * 1024 * 1024 });
    const chunk = Buffer.alloc(60_000, 1).toString('base64');
    const events = Array.from({ length: 70 }, () => ({ type: 'A', dataBase64: chunk }));
    expectRejected(await postJson(port, PATH, { events }), 400, 'BATCH_TOO_LARGE');
    expectNothingStored();
  });
});

describe('fuzzed bodies', () => {
  it('never answer 5xx and store nothing unless they answer 201 (seeded)', async () => {
    const { port } = await start();
    const seed = 20_261_124;
    const value = fc.oneof(
      fc.jsonValue({ maxDepth: 4 }),
      fc.constantFrom('any', 'none', 'exists', -1, 1.5, 2 ** 60, '__proto__', null),
    );
    const event = fc.record(
      {
        type: fc.oneof(fc.constantFrom('A', 'b.c', '9', '', 'x'.repeat(129)), fc.string()),
        data: value,
        dataBase64: fc.base64String(),
        crc: fc.integer(),
      },
      { requiredKeys: [] },
    );
    const body = fc.oneof(
      fc.record(
        {
          events: fc.array(event, { maxLength: 4 }),
          expectedVersion: value,
          idempotencyKey: fc.string({ maxLength: 80 }),
        },
        { requiredKeys: [] },
      ),
      fc.jsonValue({ maxDepth: 3 }),
      fc.string(),
    );
    await fc.assert(
      fc.asyncProperty(body, async (input) => {
        const before = http.store.generation;
        const response = await postJson(
          port,
          PATH,
          typeof input === 'string' ? input : JSON.stringify(input),
        );
        expect(response.status).toBeLessThan(500);
        if (response.status !== 201) expect(http.store.generation).toBe(before);
        else expect(http.store.generation).toBe(before + 1);
      }),
      { seed, numRuns: 300 },
    );
  });
});
