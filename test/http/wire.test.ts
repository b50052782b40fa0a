import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJsonValue, encodeStoredEvent, wireEventBytes } from '../../src/api/http/wire.js';
import type { StoredEvent } from '../../src/types.js';

const utf8 = new TextEncoder();

function stored(data: Uint8Array): StoredEvent {
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
    crc: 0,
  };
}

describe('the event data rule', () => {
  it('reads any JSON value written as data back as the same data (seeded)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        const bytes = utf8.encode(JSON.stringify(value));
        const wire = encodeStoredEvent(stored(bytes), false);
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
        const wire = JSON.parse(JSON.stringify(encodeStoredEvent(stored(data), true)));
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
      expect(canonicalJsonValue(utf8.encode(text)), text).toBeUndefined();
    }
    expect(canonicalJsonValue(new Uint8Array([0x22, 0xff, 0x22]))).toBeUndefined();
    expect(canonicalJsonValue(utf8.encode('{"a":[1,"x",null]}'))).toEqual({ value: { a: [1, 'x', null] } });
  });
});
