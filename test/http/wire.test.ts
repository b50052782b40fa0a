import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { eventsAnswer, storedEventJson } from '../../src/api/http/read-answer.js';
import {
  decodeEvents,
  isCanonicalJson,
  type WireStoredEvent,
  wireEventBytes,
  wireEventMetadata,
} from '../../src/api/http/wire.js';
import type { StoredEvent } from '../../src/types.js';

const utf8 = new TextEncoder();

function stored(data: Uint8Array, metadata = new Uint8Array(0)): StoredEvent {
  return {
    domain: 'd',
    aggregateType: 'a',
    aggregateId: 1n,
    version: 1,
    position: 0,
    generation: 1,
    timestamp: 0,
    type: 'A',
    data,
    metadata,
    crc: 0,
  };
}

/** A stored event as a client reads it: the answer's JSON text, parsed. */
const wireOf = (event: StoredEvent, withAggregate: boolean) =>
  JSON.parse(storedEventJson(event, withAggregate)) as WireStoredEvent;

const hex = (bytes: Uint8Array | string | undefined) => Buffer.from(bytes ?? '').toString('hex');

describe('the event data rule', () => {
  it('reads any JSON value written as data back as the same data (seeded)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        const bytes = utf8.encode(JSON.stringify(value));
        const wire = wireOf(stored(bytes), false);
        expect(wire.dataBase64).toBeUndefined();
        expect(wire.data).toEqual(JSON.parse(JSON.stringify(value)));
      }),
      { seed: 5151, numRuns: 500 },
    );
  });

  it('is lossless for any bytes: the client rebuilds exactly the stored bytes (seeded)', () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.jsonValue({ maxDepth: 3 }).map((v) => utf8.encode(JSON.stringify(v, null, 1))),
      fc.string().map((s) => utf8.encode(s)),
    );
    fc.assert(
      fc.property(bytes, (data) => {
        const wire = wireOf(stored(data), true);
        expect([...wireEventBytes(wire)]).toEqual([...data]);
      }),
      { seed: 6161, numRuns: 1000 },
    );
  });

  it('returns dataBase64 for non-canonical or unsafe JSON', () => {
    for (const text of [
      '{ "a": 1 }',
      '1.0',
      '12345678901234567890',
      '{"__proto__":1}',
      '"\\u0041"',
      `${'['.repeat(65)}${']'.repeat(65)}`,
      '',
    ]) {
      expect(isCanonicalJson(utf8.encode(text)), text).toBe(false);
    }
    expect(isCanonicalJson(new Uint8Array([0x22, 0xff, 0x22]))).toBe(false);
    expect(isCanonicalJson(utf8.encode('{"a":[1,"x",null]}'))).toBe(true);
    // Canonical, though the body scan does not vouch for integer-like keys: decided by parsing.
    expect(isCanonicalJson(utf8.encode('{"1":2,"a":3}'))).toBe(true);
  });
});

describe('read answers written as text', () => {
  /** The answer's event as an object, for JSON.stringify to write. */
  function wireObject(event: StoredEvent, withAggregate: boolean): Record<string, unknown> {
    const wire: Record<string, unknown> = {
      type: event.type,
      version: event.version,
      position: event.position,
      generation: event.generation,
      timestamp: event.timestamp,
      crc: event.crc,
    };
    if (withAggregate) {
      wire.aggregateType = event.aggregateType;
      wire.aggregateId = event.aggregateId.toString();
    }
    for (const [field, bytes] of [
      ['data', event.data],
      ['metadata', event.metadata],
    ] as const) {
      if (isCanonicalJson(bytes)) wire[field] = JSON.parse(Buffer.from(bytes).toString('utf8'));
      else wire[`${field}Base64`] = Buffer.from(bytes).toString('base64');
    }
    return wire;
  }

  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 24 }),
    fc.uint8Array({ minLength: 49, maxLength: 300 }),
    fc.jsonValue({ maxDepth: 3 }).map((v) => utf8.encode(JSON.stringify(v))),
    fc.jsonValue({ maxDepth: 2 }).map((v) => utf8.encode(JSON.stringify(v, null, 1))),
  );
  const name = fc.oneof(
    fc.string({ maxLength: 8 }),
    fc.string({ unit: 'binary', maxLength: 8 }),
    fc.constantFrom('a"b\\c', '\u0001\n', '\ud800x', 'é😀', '\ufeff\u2028'),
  );
  // The fields are non-negative integers; anything else is written as JSON.stringify writes it.
  const number = fc.oneof(
    fc.nat(),
    fc.maxSafeNat(),
    fc.constantFrom(0, -0, 99_999_999, 100_000_000, 100_000_001, 2 ** 53, -1, 0.5, 1e21, Number.NaN),
    fc.double(),
  );
  const event = fc
    .record({
      type: name,
      aggregateType: name,
      aggregateId: fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }),
      version: number,
      position: number,
      generation: number,
      timestamp: number,
      crc: number,
      data: bytes,
      metadata: bytes,
    })
    .map((e): StoredEvent => ({ domain: 'd', ...e }));
  const fieldValue = fc.oneof(fc.nat(), fc.boolean(), fc.constant(undefined));
  // The answers' fields ahead of the events and behind them (no name on both sides).
  const before = fc.dictionary(fc.constantFrom('version', 'v', '\u00e9"'), fieldValue);
  const after = fc.dictionary(
    fc.constantFrom('lastVersion', 'complete', 'nextVersion', 'nextPosition'),
    fieldValue,
  );

  it('is the text JSON.stringify writes for the same answer object (seeded)', () => {
    fc.assert(
      fc.property(
        fc.array(event, { maxLength: 4 }),
        fc.boolean(),
        before,
        after,
        fc.nat(7),
        (separate, withAggregate, head, tail, lead) => {
          // As a read gives them: every event's bytes are views of one buffer, after `lead` others.
          const shared = new Uint8Array(
            lead + separate.reduce((n, e) => n + e.data.byteLength + e.metadata.byteLength, 0),
          );
          let at = lead;
          const view = (bytes: Uint8Array) => {
            shared.set(bytes, at);
            at += bytes.byteLength;
            return shared.subarray(at - bytes.byteLength, at);
          };
          const together = separate.map((e) => ({ ...e, data: view(e.data), metadata: view(e.metadata) }));
          const expected = JSON.stringify({
            ...head,
            events: separate.map((e) => wireObject(e, withAggregate)),
            ...tail,
          });
          expect(eventsAnswer(head, separate, withAggregate, tail).toString('utf8')).toBe(expected);
          expect(eventsAnswer(head, together, withAggregate, tail).toString('utf8')).toBe(expected);
          for (const [i, e] of together.entries()) {
            expect(storedEventJson(e, withAggregate)).toBe(
              JSON.stringify(wireObject(separate[i] as StoredEvent, withAggregate)),
            );
          }
        },
      ),
      { seed: 4141, numRuns: 500 },
    );
  });
});

describe('the event metadata rule (the same as for data)', () => {
  it('reads any JSON value written as metadata back as the same metadata (seeded)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        const bytes = utf8.encode(JSON.stringify(value));
        const wire = wireOf(stored(new Uint8Array([1]), bytes), false);
        expect(wire.metadataBase64).toBeUndefined();
        expect(wire.metadata).toEqual(JSON.parse(JSON.stringify(value)));
        expect(wire.dataBase64).toBe('AQ==');
      }),
      { seed: 7171, numRuns: 300 },
    );
  });

  it('is lossless for any metadata bytes, and empty metadata reads back as metadataBase64 "" (seeded)', () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.jsonValue({ maxDepth: 3 }).map((v) => utf8.encode(JSON.stringify(v, null, 1))),
      fc.string().map((s) => utf8.encode(s)),
    );
    fc.assert(
      fc.property(bytes, bytes, (data, metadata) => {
        const wire = wireOf(stored(data, metadata), true);
        expect([...wireEventBytes(wire)]).toEqual([...data]);
        expect([...wireEventMetadata(wire)]).toEqual([...metadata]);
        if (metadata.byteLength === 0) expect(wire.metadataBase64).toBe('');
      }),
      { seed: 8181, numRuns: 1000 },
    );
  });

  it('decodes data and metadata of a batch, JSON, base64 or absent, to the stored bytes (seeded)', () => {
    const field = fc.oneof(
      fc.constant({}),
      fc.jsonValue({ maxDepth: 3 }).map((json) => ({ json })),
      fc.uint8Array({ maxLength: 40 }).map((bytes) => ({ base64: Buffer.from(bytes).toString('base64') })),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(field, field), { minLength: 1, maxLength: 8 }), (fields) => {
        const wire = fields.map(([data, metadata]) => {
          const event: Record<string, unknown> = { type: 'T' };
          if ('json' in data) event.data = data.json;
          if ('base64' in data) event.dataBase64 = data.base64;
          if ('json' in metadata) event.metadata = metadata.json;
          if ('base64' in metadata) event.metadataBase64 = metadata.base64;
          return event;
        });
        const events = decodeEvents(JSON.parse(JSON.stringify(wire)));
        const expected = (f: { json?: unknown; base64?: string }) =>
          'base64' in f
            ? hex(Buffer.from(f.base64 as string, 'base64'))
            : 'json' in f
              ? hex(utf8.encode(JSON.stringify(f.json)))
              : '';
        expect(events.map((e) => [hex(e.data), hex(e.metadata)])).toEqual(
          fields.map(([data, metadata]) => [expected(data), expected(metadata)]),
        );
      }),
      { seed: 9191, numRuns: 500 },
    );
  });

  it('refuses metadata with metadataBase64, malformed base64 and unknown fields', () => {
    const code = (events: unknown) => {
      try {
        decodeEvents(events);
      } catch (error) {
        return (error as { code: string; message: string }).code;
      }
      return 'ok';
    };
    expect(code([{ type: 'T', metadata: {}, metadataBase64: '' }])).toBe('INVALID_EVENT');
    expect(code([{ type: 'T', metadataBase64: 'not base64!' }])).toBe('INVALID_EVENT');
    expect(code([{ type: 'T', metadataBase64: 7 }])).toBe('INVALID_EVENT');
    expect(code([{ type: 'T', meta: {} }])).toBe('INVALID_EVENT');
    expect(code([{ type: 'T', metadata: null, metadataBase64: 'AA==' }])).toBe('INVALID_EVENT');
    expect(code([{ type: 'T', metadata: null }])).toBe('ok');
  });
});
