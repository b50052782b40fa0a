import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest, IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/api/event-store.js';
import { openSseStream, type SseStream } from '../../src/api/http/sse.js';
import { RingStore } from '../../src/api/ring-store.js';
import { MemoryEventStore } from '../../src/model/memory-store.js';
import { type RunningServer, startServer } from './helpers.js';

interface SseMessage {
  id?: string;
  event?: string;
  data: string;
}

/** A minimal SSE reader over node:http: yields parsed messages until the stream ends. */
class SseReader {
  readonly #messages: SseMessage[] = [];
  readonly #waiters: Array<() => void> = [];
  #buffer = '';
  ended = false;
  response!: IncomingMessage;
  readonly ready: Promise<IncomingMessage>;
  readonly #request;

  constructor(port: number, path: string, headers: Record<string, string> = {}) {
    this.#request = httpRequest({
      host: '127.0.0.1',
      port,
      path,
      headers: { accept: 'text/event-stream', ...headers },
    });
    this.ready = new Promise((resolve, reject) => {
      this.#request.on('response', (response) => {
        this.response = response;
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => this.#feed(chunk));
        response.on('end', () => this.#finish());
        response.on('error', () => this.#finish());
        resolve(response);
      });
      this.#request.on('error', reject);
    });
    this.#request.end();
  }

  #finish(): void {
    this.ended = true;
    for (const wake of this.#waiters.splice(0)) wake();
  }

  #feed(chunk: string): void {
    this.#buffer += chunk;
    let end = this.#buffer.indexOf('\n\n');
    while (end !== -1) {
      const block = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      const message: SseMessage = { data: '' };
      let hasData = false;
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = line.slice(0, colon);
        const value = line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') message.id = value;
        else if (field === 'event') message.event = value;
        else if (field === 'data') {
          message.data += value;
          hasData = true;
        }
      }
      if (hasData) this.#messages.push(message);
      end = this.#buffer.indexOf('\n\n');
    }
    for (const wake of this.#waiters.splice(0)) wake();
  }

  async take(count: number): Promise<SseMessage[]> {
    while (this.#messages.length < count && !this.ended) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    return this.#messages.splice(0, count);
  }

  close(): void {
    this.#request.destroy();
  }
}

let server: RunningServer | undefined;
let store: EventStore;
const dirs: string[] = [];

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const STORES: Array<[string, () => Promise<EventStore>]> = [
  ['MemoryEventStore', async () => new MemoryEventStore()],
  [
    'RingStore',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ringstore-sse-'));
      dirs.push(dir);
      return RingStore.open({ dir });
    },
  ],
];

afterEach(async () => {
  await server?.close();
  server = undefined;
  await store?.close();
});

describe('GET /v1/domains/:domain/subscribe (SSE)', () => {
  it.each(STORES)(
    'delivers every event exactly once across a reconnect with Last-Event-ID (%s)',
    async (_name, open) => {
      store = await open();
      server = await startServer(store, { sseHeartbeatMs: 50 });
      for (let i = 0; i < 5; i++)
        await store.put('live', 'a', BigInt(i + 1), [{ type: 'A', data: `{"i":${i}}` }]);
      await store.put('other', 'a', 1n, [{ type: 'A' }]);

      const first = new SseReader(server.port, '/v1/domains/live/subscribe');
      const response = await first.ready;
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toMatch(/^text\/event-stream/);
      const seen = await first.take(3);
      first.close();

      // Written while nobody listens: must arrive after the reconnect, once.
      for (let i = 5; i < 8; i++)
        await store.put('live', 'b', BigInt(i), [{ type: 'B', data: `{"i":${i}}` }, { type: 'C' }]);
      const lastId = seen.at(-1)?.id as string;
      // The original URL is repeated with the header, as EventSource does; the header wins.
      const second = new SseReader(server.port, '/v1/domains/live/subscribe?fromPosition=0', {
        'last-event-id': lastId,
      });
      await second.ready;
      const rest = await second.take(9);
      // The backlog ends with one caught-up message, which carries no id.
      expect(rest[8]).toEqual({ event: 'caught-up', data: '{"nextPosition":11}' });
      seen.push(...rest.slice(0, 8));
      // And live: appended after the subscriber caught up.
      await store.put('live', 'a', 1n, [{ type: 'Z', data: '"live"' }]);
      seen.push(...(await second.take(1)));
      second.close();

      expect(seen.map((m) => Number(m.id))).toEqual(Array.from({ length: 12 }, (_, i) => i));
      const events = seen.map((m) => JSON.parse(m.data));
      expect(events.map((e) => e.position)).toEqual(seen.map((m) => Number(m.id)));
      expect(events[0]).toMatchObject({
        type: 'A',
        aggregateType: 'a',
        aggregateId: '1',
        data: { i: 0 },
        version: 1,
      });
      expect(events[11]).toMatchObject({ type: 'Z', data: 'live' });
    },
  );

  it('sends each event with its metadata, by the data rule', async () => {
    store = new MemoryEventStore();
    server = await startServer(store);
    await store.put('d', 'a', 1n, [
      { type: 'A', data: '{"n":1}', metadata: '{"correlationId":"c-1"}' },
      { type: 'B', metadata: new Uint8Array([0, 255]) },
      { type: 'C' },
    ]);
    const reader = new SseReader(server.port, '/v1/domains/d/subscribe');
    const events = (await reader.take(3)).map((m) => JSON.parse(m.data));
    reader.close();
    expect(events.map((e) => [e.data ?? e.dataBase64, e.metadata ?? e.metadataBase64])).toEqual([
      [{ n: 1 }, { correlationId: 'c-1' }],
      ['', Buffer.from([0, 255]).toString('base64')],
      ['', ''],
    ]);
  });

  it('says caught-up once, right after the last backlog event, then sends live events', async () => {
    store = new MemoryEventStore();
    server = await startServer(store);
    await store.put('d', 'a', 1n, [{ type: 'A' }, { type: 'B' }, { type: 'A' }]);
    const reader = new SseReader(server.port, '/v1/domains/d/subscribe?types=A');
    const backlog = await reader.take(3);
    await store.put('d', 'a', 1n, [{ type: 'A' }]);
    const [live] = await reader.take(1);
    reader.close();
    expect(backlog.map((m) => m.event ?? m.id)).toEqual(['0', '2', 'caught-up']);
    expect(backlog[2]?.data).toBe('{"nextPosition":3}');
    expect(live?.id).toBe('3');
  });

  it('filters by type and starts at fromPosition', async () => {
    store = new MemoryEventStore();
    server = await startServer(store);
    await store.put('d', 'a', 1n, [{ type: 'A' }, { type: 'B' }, { type: 'A' }, { type: 'B' }]);
    const reader = new SseReader(server.port, '/v1/domains/d/subscribe?fromPosition=2&types=B');
    const [only] = await reader.take(1);
    expect(only?.id).toBe('3');
    reader.close();
  });

  it.each(STORES)(
    'fromPosition=end sends caught-up at the end of the log, then only new events (%s)',
    async (_name, open) => {
      store = await open();
      server = await startServer(store);
      await store.put('d', 'a', 1n, [{ type: 'A' }, { type: 'B' }, { type: 'A' }]);
      const reader = new SseReader(server.port, '/v1/domains/d/subscribe?fromPosition=end&types=A');
      const [caughtUp] = await reader.take(1);
      expect(caughtUp).toEqual({ event: 'caught-up', data: '{"nextPosition":3}' });
      await store.put('d', 'a', 1n, [{ type: 'B' }, { type: 'A' }]);
      const [live] = await reader.take(1);
      reader.close();
      expect(live?.id).toBe('4');
      expect(JSON.parse(live?.data as string)).toMatchObject({ type: 'A', version: 5 });
      // A reconnect resumes after the last event seen: Last-Event-ID wins over fromPosition=end.
      await store.put('d', 'a', 1n, [{ type: 'A' }]);
      const again = new SseReader(server.port, '/v1/domains/d/subscribe?fromPosition=end&types=A', {
        'last-event-id': '4',
      });
      const [missed] = await again.take(1);
      again.close();
      expect(missed?.id).toBe('5');
      const bad = new SseReader(server.port, '/v1/domains/d/subscribe?fromPosition=last');
      const response = await bad.ready;
      expect(response.statusCode).toBe(400);
      bad.close();
    },
  );

  it('ends open streams with an error message when the server closes', async () => {
    store = new MemoryEventStore();
    server = await startServer(store);
    const reader = new SseReader(server.port, '/v1/domains/quiet/subscribe');
    await reader.ready;
    await new Promise((resolve) => setTimeout(resolve, 20));
    await server.close();
    server = undefined;
    const messages = await reader.take(2);
    // An empty domain: the backlog is empty, so the stream is caught up at once.
    expect(messages[0]).toEqual({ event: 'caught-up', data: '{"nextPosition":0}' });
    expect(messages[1]?.event).toBe('error');
    expect(JSON.parse(messages[1]?.data as string).error.code).toBe('STORE_CLOSED');
    expect(reader.ended).toBe(true);
  });
});

describe('SSE stream of a client already gone', () => {
  it('ends at once when the response was closed before the stream started, on a quiet domain', async () => {
    const active = new Set<SseStream>();
    const stream = openSseStream({
      store: new MemoryEventStore(),
      domain: 'quiet',
      fromPosition: 'end',
      types: undefined,
      heartbeatMs: 60_000,
      active,
    });
    const raw = new ServerResponse(new IncomingMessage(new Socket()));
    raw.destroy();
    // Without the check of raw.destroyed at the start, this waited for the domain's next event.
    const outcome = await Promise.race([
      stream(raw).then(() => 'ended'),
      new Promise((resolve) => setTimeout(() => resolve('still streaming'), 2_000)),
    ]);
    expect(outcome).toBe('ended');
    expect(active.size).toBe(0);
  });
});
