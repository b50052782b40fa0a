import { describe, expect, it } from 'vitest';
import { hasCode } from '../../src/errors.js';
import { crc32 } from '../../src/model/crc.js';
import { eventCrc, validateExpectedVersion } from '../../src/model/events.js';
import { KeyGenerator, parseAggregateId } from '../../src/model/ids.js';
import { validateDomain, validateEventType } from '../../src/model/names.js';
import { checkIdempotencyKey, PutValidator } from '../../src/model/put-validator.js';
import { validateDirection, validateGetOptions, validateInstanceRead } from '../../src/model/queries.js';

const validateEvents = (inputs: unknown) => new PutValidator().events(inputs);

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe('names', () => {
  it.each(['billing', 'a', '0-x_y', 'a'.repeat(63)])('accepts domain %s', (name) => {
    expect(validateDomain(name)).toBe(name);
  });
  it.each(['', 'Billing', '-a', '_a', 'a'.repeat(64), '..', 'a/b', 'a%2Fb', 'a\u0000', 'é', 42, null])(
    'rejects domain %s',
    (name) => {
      expect(codeOf(() => validateDomain(name))).toBe('INVALID_NAME');
    },
  );
  it('accepts rich event types and rejects the rest', () => {
    expect(validateEventType('Person.Registered:v2')).toBe('Person.Registered:v2');
    expect(codeOf(() => validateEventType('1abc'))).toBe('INVALID_NAME');
    expect(codeOf(() => validateEventType(`a${'b'.repeat(128)}`))).toBe('INVALID_NAME');
  });
});

describe('aggregate ids', () => {
  it('parses bigint, number and decimal strings within 1 … 2^64-1', () => {
    expect(parseAggregateId(1n)).toBe(1n);
    expect(parseAggregateId(42)).toBe(42n);
    expect(parseAggregateId('18446744073709551615')).toBe((1n << 64n) - 1n);
  });
  it.each([
    0,
    0n,
    -1,
    1.5,
    Number.NaN,
    '0',
    '01',
    '18446744073709551616',
    '-1',
    '1e3',
    ' 1',
    1n << 64n,
    null,
    {},
  ])('rejects %s', (value) => {
    expect(codeOf(() => parseAggregateId(value))).toBe('INVALID_ID');
  });
  it('newKey is unique and increasing, even within one millisecond', () => {
    const keys = new KeyGenerator();
    let last = 0n;
    for (let i = 0; i < 10_000; i++) {
      const key = keys.next(1_700_000_000_000);
      expect(key > last).toBe(true);
      last = key;
    }
    expect(keys.next(1_700_000_000_001) > last).toBe(true);
  });
});

describe('events and options', () => {
  it('normalises strings to bytes and checks limits', () => {
    const [event] = validateEvents([{ type: 'A', data: 'hé' }]);
    expect(event?.data).toEqual(new Uint8Array([0x68, 0xc3, 0xa9]));
    expect(validateEvents([{ type: 'A', data: new Uint8Array(65_535) }])[0]?.data.byteLength).toBe(65_535);
    expect(codeOf(() => validateEvents([{ type: 'A', data: new Uint8Array(65_536) }]))).toBe(
      'EVENT_TOO_LARGE',
    );
    expect(codeOf(() => validateEvents([]))).toBe('INVALID_BATCH');
    expect(codeOf(() => validateEvents(Array.from({ length: 10_001 }, () => ({ type: 'A' }))))).toBe(
      'BATCH_TOO_LARGE',
    );
    expect(codeOf(() => validateEvents([{ type: 'A', data: 5 }]))).toBe('INVALID_EVENT');
    // UTF-8 cannot carry a lone surrogate: it would be stored as U+FFFD, not as given.
    expect(codeOf(() => validateEvents([{ type: 'A', data: 'x\ud800' }]))).toBe('INVALID_EVENT');
    expect(codeOf(() => validateEvents([{ type: 'A', metadata: '\udc00' }]))).toBe('INVALID_EVENT');
    expect(codeOf(() => validateEvents([{ type: 'A', crc: 1.5 }]))).toBe('INVALID_EVENT');
    expect(codeOf(() => validateEvents([null]))).toBe('INVALID_EVENT');
  });
  it('normalises metadata like data: bytes, UTF-8 strings, empty when absent; bounded and typed', () => {
    const [plain, text, bytes] = validateEvents([
      { type: 'A' },
      { type: 'A', metadata: '{"id":"é"}' },
      { type: 'A', metadata: new Uint8Array([0, 255]) },
    ]);
    expect(plain?.metadata).toEqual(new Uint8Array(0));
    expect(text?.metadata).toEqual(new TextEncoder().encode('{"id":"é"}'));
    expect(bytes?.metadata).toEqual(new Uint8Array([0, 255]));
    expect(validateEvents([{ type: 'A', metadata: new Uint8Array(65_535) }])[0]?.metadata.byteLength).toBe(
      65_535,
    );
    const tooLong = (() => {
      try {
        validateEvents([{ type: 'A' }, { type: 'A', metadata: new Uint8Array(65_536) }]);
      } catch (error) {
        return error as { code: string; message: string; details: Record<string, unknown> };
      }
      return undefined;
    })();
    expect(tooLong).toMatchObject({ code: 'EVENT_TOO_LARGE', details: { index: 1 } });
    expect(tooLong?.message).toMatch(/event 1: metadata is 65536 bytes/);
    expect(codeOf(() => validateEvents([{ type: 'A', metadata: 5 }]))).toBe('INVALID_EVENT');
    expect(codeOf(() => validateEvents([{ type: 'A', metadata: null }]))).toBe('INVALID_EVENT');
    expect(codeOf(() => validateEvents([{ type: 'A', metadata: [1, 2] }]))).toBe('INVALID_EVENT');
  });
  it('bounds data and metadata of a batch together', () => {
    const half = new Uint8Array(65_535);
    const fits = Array.from({ length: 32 }, () => ({ type: 'A', data: half, metadata: half }));
    expect(validateEvents(fits)).toHaveLength(32);
    expect(codeOf(() => validateEvents([...fits, { type: 'A', data: half, metadata: half }]))).toBe(
      'BATCH_TOO_LARGE',
    );
  });
  it('defines the event CRC over data then metadata, equal to the data CRC without metadata', () => {
    const data = new TextEncoder().encode('{"n":1}');
    const metadata = new TextEncoder().encode('{"causationId":"c"}');
    expect(eventCrc({ data, metadata })).toBe(crc32(new TextEncoder().encode('{"n":1}{"causationId":"c"}')));
    expect(eventCrc({ data, metadata })).toBe(crc32(metadata, crc32(data)));
    expect(eventCrc({ data, metadata: new Uint8Array(0) })).toBe(crc32(data));
  });
  it('validates expected versions and idempotency keys', () => {
    expect(validateExpectedVersion(undefined)).toBe('any');
    expect(validateExpectedVersion(0)).toBe(0);
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 53, '3', null]) {
      expect(
        hasCode(
          (() => {
            try {
              validateExpectedVersion(bad);
            } catch (e) {
              return e;
            }
          })(),
          'INVALID_VERSION',
        ),
      ).toBe(true);
    }
    expect(checkIdempotencyKey('k')).toBe('k');
    expect(codeOf(() => checkIdempotencyKey(''))).toBe('INVALID_IDEMPOTENCY_KEY');
    expect(codeOf(() => checkIdempotencyKey('é'.repeat(33)))).toBe('INVALID_IDEMPOTENCY_KEY');
    // Lone surrogates all encode as U+FFFD: 'k\ud800' and 'k\udc00' would be one key.
    for (const key of ['k\ud800', 'k\udc00', '\udfffk', 'a\ud83d']) {
      expect(codeOf(() => checkIdempotencyKey(key))).toBe('INVALID_IDEMPOTENCY_KEY');
    }
    expect(checkIdempotencyKey('k\u{1f600}')).toBe('k\u{1f600}');
  });
});

describe('instance read options', () => {
  it('read fromVersion and toVersion in reading order, with defaults per direction', () => {
    const infinity = Number.POSITIVE_INFINITY;
    expect(validateInstanceRead()).toEqual({
      direction: 'forward',
      fromVersion: 1,
      toVersion: infinity,
      limit: infinity,
      atGeneration: infinity,
      verifyCrc: false,
    });
    expect(validateInstanceRead({ direction: 'backward', limit: 3 })).toMatchObject({
      direction: 'backward',
      fromVersion: infinity,
      toVersion: 1,
      limit: 3,
    });
    expect(validateInstanceRead({ direction: 'backward', fromVersion: 0, toVersion: 0 })).toMatchObject({
      fromVersion: 0,
      toVersion: 1,
    });
    for (const bad of ['up', '', null, 1, ['backward']]) {
      expect(codeOf(() => validateDirection(bad))).toBe('INVALID_QUERY');
    }
  });

  it('validateGetOptions is forward only: a backward read is refused, never read forward', () => {
    expect(validateGetOptions({ direction: 'forward', fromVersion: 2 })).toMatchObject({ fromVersion: 2 });
    expect(codeOf(() => validateGetOptions({ direction: 'backward' }))).toBe('INVALID_QUERY');
  });
});
