import { describe, expect, it } from 'vitest';
import { consumer } from '../../src/api/consumer.js';
import { CONSUMER_POSITIONS_DOMAIN } from '../../src/api/consumer-positions.js';
import { sha256Hex, TokenAuthority } from '../../src/api/http/auth.js';
import { HttpEventStore } from '../../src/api/http/client.js';
import { MemoryEventStore } from '../../src/model/memory-store.js';
import { errorOf, postJson, rawRequest, serverPerTest } from './helpers.js';

const server = serverPerTest();
const POSITION = '/v1/domains/billing/consumers/mailer';
const ACK = `${POSITION}/ack`;

async function billingWith(events: number): Promise<MemoryEventStore> {
  const store = new MemoryEventStore();
  for (let i = 0; i < events; i++) await store.put('billing', 'invoice', BigInt(i + 1), [{ type: 'Paid' }]);
  return store;
}

describe('consumer positions over HTTP', () => {
  it('reads a position, acknowledges, repeats an ack without growing the store', async () => {
    const { port } = await server.start({}, await billingWith(5));
    const fresh = await rawRequest(port, 'GET', POSITION);
    expect([fresh.status, fresh.json()]).toEqual([200, { nextPosition: 0, version: 0 }]);
    expect(fresh.headers['ringstore-generation']).toBe('5');
    const acked = await postJson(port, ACK, { nextPosition: 3 });
    expect([acked.status, acked.json()]).toEqual([200, { nextPosition: 3, version: 1 }]);
    expect(acked.headers['ringstore-generation']).toBe('6');
    expect((await postJson(port, ACK, { nextPosition: 3, expectedVersion: 1 })).json()).toEqual({
      nextPosition: 3,
      version: 1,
    });
    expect((await postJson(port, ACK, { nextPosition: 5, expectedVersion: 1 })).json()).toEqual({
      nextPosition: 5,
      version: 2,
    });
    expect((await rawRequest(port, 'GET', POSITION)).json()).toEqual({ nextPosition: 5, version: 2 });
    // A lower position is a reset: the consumer handles those events again.
    expect((await postJson(port, ACK, { nextPosition: 0 })).json()).toEqual({ nextPosition: 0, version: 3 });
    expect((await server.store.get(CONSUMER_POSITIONS_DOMAIN, 'mailer', 1n)).version).toBe(3);
  });

  it('refuses a stale expectedVersion, another domain, a position past the end and malformed acks', async () => {
    const { port } = await server.start({}, await billingWith(4));
    await postJson(port, ACK, { nextPosition: 2 });
    const stale = await postJson(port, ACK, { nextPosition: 3, expectedVersion: 0 });
    expect(stale.status).toBe(409);
    expect(errorOf(stale)).toMatchObject({ code: 'CONSUMER_CONFLICT', actualVersion: 1 });
    const other = await rawRequest(port, 'GET', '/v1/domains/shipping/consumers/mailer');
    expect(other.status).toBe(409);
    expect(errorOf(other)).toMatchObject({ code: 'CONSUMER_CONFLICT', domain: 'billing' });
    const past = await postJson(port, ACK, { nextPosition: 5 });
    expect(past.status).toBe(400);
    expect(errorOf(past)).toMatchObject({ code: 'INVALID_QUERY', option: 'nextPosition' });
    for (const [body, code] of [
      [{}, 'INVALID_QUERY'],
      [{ nextPosition: '3' }, 'INVALID_QUERY'],
      [{ nextPosition: -1 }, 'INVALID_QUERY'],
      [{ nextPosition: 1, expectedVersion: -2 }, 'INVALID_VERSION'],
      [{ nextPosition: 1, extra: true }, 'BAD_REQUEST'],
      [[1], 'BAD_REQUEST'],
    ] as const) {
      const response = await postJson(port, ACK, body);
      expect([response.status, errorOf(response).code], JSON.stringify(body)).toEqual([400, code]);
    }
    const text = await rawRequest(port, 'POST', ACK, {
      headers: { 'content-type': 'text/plain' },
      body: '{"nextPosition":1}',
    });
    expect(text.status).toBe(415);
    expect(errorOf(await rawRequest(port, 'GET', '/v1/domains/billing/consumers/Mailer')).code).toBe(
      'INVALID_NAME',
    );
    expect(errorOf(await rawRequest(port, 'GET', `${POSITION}?at=1`)).code).toBe('INVALID_QUERY');
    expect((await rawRequest(port, 'GET', POSITION)).json()).toEqual({ nextPosition: 2, version: 1 });
  });

  it('keeps the positions domain to positions: appends of anything else and consumers of it are refused', async () => {
    const { port } = await server.start({}, await billingWith(4));
    const positions = `/v1/domains/${CONSUMER_POSITIONS_DOMAIN}/aggregates`;
    const position = (nextPosition: unknown) => ({
      type: 'PositionStored',
      data: { domain: 'billing', nextPosition },
    });
    for (const [path, events] of [
      [`${positions}/mailer/1/events`, [{ type: 'Oops', data: { hello: 1 } }]],
      [`${positions}/mailer/1/events`, [position(-1)]],
      [`${positions}/mailer/1/events`, [position(2), { type: 'PositionStored' }]],
      [`${positions}/mailer/2/events`, [position(2)]],
    ] as const) {
      const response = await postJson(port, path, { events });
      expect([response.status, errorOf(response).code], JSON.stringify(events)).toEqual([
        400,
        'INVALID_BATCH',
      ]);
    }
    const selfBound = await postJson(port, `${positions}/mailer/1/events`, {
      events: [{ type: 'PositionStored', data: { domain: CONSUMER_POSITIONS_DOMAIN, nextPosition: 0 } }],
    });
    expect([selfBound.status, errorOf(selfBound).code]).toEqual([400, 'INVALID_OPTION']);
    const lines = [
      { domain: CONSUMER_POSITIONS_DOMAIN, aggregateType: 'mailer', id: '1', events: [{ type: 'Oops' }] },
      { domain: CONSUMER_POSITIONS_DOMAIN, aggregateType: 'mailer', id: '1', events: [position(3)] },
    ];
    const ingest = await rawRequest(port, 'POST', '/v1/ingest', {
      headers: { 'content-type': 'application/x-ndjson' },
      body: `${lines.map((line) => JSON.stringify(line)).join('\n')}\n`,
    });
    expect(
      ingest.text
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line).ok),
    ).toEqual([false, true]);
    // What was refused left the consumer readable; the well-formed position is the one in force.
    expect((await rawRequest(port, 'GET', POSITION)).json()).toEqual({ nextPosition: 3, version: 1 });
    const self = await rawRequest(port, 'GET', `/v1/domains/${CONSUMER_POSITIONS_DOMAIN}/consumers/mailer`);
    expect([self.status, errorOf(self)]).toMatchObject([400, { code: 'INVALID_OPTION', option: 'domain' }]);
  });

  it('embedded and remote consumers of one name share the position; the client consumer resumes it', async () => {
    const store = await billingWith(3);
    const { url, port } = await server.start({}, store);
    await consumer(store, 'mailer', { domain: 'billing', endWhenCaughtUp: true }).run(() => {});
    expect((await rawRequest(port, 'GET', POSITION)).json()).toEqual({ nextPosition: 3, version: 1 });
    await store.put('billing', 'invoice', 9n, [{ type: 'Paid' }, { type: 'Void' }]);
    const client = await HttpEventStore.connect(url);
    expect(await client.consumerPosition('billing', 'mailer')).toEqual({ nextPosition: 3, version: 1 });
    const seen: number[] = [];
    const result = await client
      .consumer('mailer', { domain: 'billing', types: ['Paid'], endWhenCaughtUp: true })
      .run((event) => {
        seen.push(event.position);
      });
    expect(seen).toEqual([3]);
    expect(result).toEqual({ endReason: 'caught-up', nextPosition: 5, handled: 1 });
    expect(await consumer(store, 'mailer', { domain: 'billing' }).position()).toEqual({
      nextPosition: 5,
      version: 2,
    });
    expect(client.domains()).toContain(CONSUMER_POSITIONS_DOMAIN);
    const conflict = client.ackConsumer('billing', 'mailer', 5, { expectedVersion: 1 });
    await expect(conflict).rejects.toMatchObject({ code: 'CONSUMER_CONFLICT' });
    await client.close();
  });

  it('needs read on the domain to read a position, and also append on the positions domain to ack', async () => {
    const tokens = new TokenAuthority([
      { name: 'reader', sha256: sha256Hex('reader'), scopes: { billing: ['read'] } },
      {
        name: 'consumer',
        sha256: sha256Hex('consumer'),
        scopes: { billing: ['read'], [CONSUMER_POSITIONS_DOMAIN]: ['append'] },
      },
      { name: 'writer', sha256: sha256Hex('writer'), scopes: { '*': ['append'] } },
    ]);
    const { port } = await server.start({ tokens }, await billingWith(2));
    const as = (token: string) => ({ authorization: `Bearer ${token}` });
    expect((await rawRequest(port, 'GET', POSITION, { headers: as('reader') })).status).toBe(200);
    expect((await rawRequest(port, 'GET', POSITION)).status).toBe(401);
    const readerAck = await postJson(port, ACK, { nextPosition: 1 }, as('reader'));
    expect([readerAck.status, errorOf(readerAck).code]).toEqual([403, 'FORBIDDEN']);
    const writerRead = await rawRequest(port, 'GET', POSITION, { headers: as('writer') });
    expect([writerRead.status, errorOf(writerRead).code]).toEqual([403, 'FORBIDDEN']);
    const writerAck = await postJson(port, ACK, { nextPosition: 1 }, as('writer'));
    expect(writerAck.status).toBe(403);
    const ack = await postJson(port, ACK, { nextPosition: 1 }, as('consumer'));
    expect([ack.status, ack.json()]).toEqual([200, { nextPosition: 1, version: 1 }]);
  });
});
