import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JsonText, parseEventsBody } from '../../src/api/http/events-body.js';
import { parseJsonSafely } from '../../src/api/http/safe-json.js';
import { decodePutBody } from '../../src/api/http/wire.js';
import { RingStoreError } from '../../src/errors.js';

/**
 * parseEventsBody must never change what an append stores or answers. The oracle is the path it
 * replaced: parseJsonSafely (JSON.parse and the safety walk) of the whole body, then every event's
 * data and metadata stored as JSON.stringify of the parsed value.
 */

const hex = (bytes: Uint8Array | string | undefined) =>
  Buffer.from(bytes ?? new Uint8Array(0)).toString('hex');

function outcome(parse: (text: string) => unknown, body: string): unknown {
  try {
    const { events, options } = decodePutBody(parse(body));
    return {
      options,
      events: events.map((e) => ({ type: e.type, crc: e.crc, data: hex(e.data), metadata: hex(e.metadata) })),
    };
  } catch (err) {
    if (!(err instanceof RingStoreError)) throw err;
    return { code: err.code, message: err.message, details: err.details };
  }
}

/** The stored bytes as the replaced code computed them: JSON.stringify of each parsed value. */
function oracleBytes(body: string): { data: string; metadata: string }[] {
  const parsed = JSON.parse(body) as { events: { data?: unknown; metadata?: unknown }[] };
  return parsed.events.map((e) => ({
    data: e.data === undefined ? '' : hex(Buffer.from(JSON.stringify(e.data), 'utf8')),
    metadata: e.metadata === undefined ? '' : hex(Buffer.from(JSON.stringify(e.metadata), 'utf8')),
  }));
}

const ws = fc.constantFrom('', '', '', '', '', ' ', '\n', '\t', '\r\n  ');

const numberText = fc.oneof(
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
  fc.constantFrom(
    '-0',
    '0',
    '-0.0',
    '0.0',
    '1.0',
    '1e2',
    '1E+2',
    '1e-7',
    '0e0',
    '-1.5e-3',
    '2.50',
    '0.1',
    '123456789012345',
    '-123456789012345',
    '1234567890123456',
    '12345678901234567',
    '9007199254740993',
    '100000000000000000000',
    '1e21',
    '1e400',
    '-1e400',
  ),
  fc
    .tuple(fc.integer({ min: -1000, max: 1000 }), fc.nat(9999), fc.integer({ min: -30, max: 30 }))
    .map(([a, b, e]) => `${a}.${b}e${e}`),
);

const hex4 = fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.boolean()).map(([n, upper]) => {
  const h = n.toString(16).padStart(4, '0');
  return `\\u${upper ? h.toUpperCase() : h}`;
});

const stringPiece = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .string({ unit: 'binary', maxLength: 4 })
      .map((raw) => raw.replace(/["\\\u0000-\u001f]/g, 'x')),
  },
  { weight: 2, arbitrary: fc.constantFrom('\\"', '\\\\', '\\/', '\\b', '\\f', '\\n', '\\r', '\\t') },
  { weight: 1, arbitrary: hex4 },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '\\u0041',
      '\\u001f',
      '\\u001F',
      '\\ud83d\\ude00',
      '\\ud800',
      '\\udc00x',
      '\\u2028',
      '\u2028',
      '\u007f',
      'é',
      '😀',
      '\ud800',
      '\udc00',
      '\ud83d',
    ),
  },
);

/** JSON string literals, raw characters made legal (no bare quote, backslash or control char). */
const stringText = fc
  .array(stringPiece, { maxLength: 6 })
  .map((pieces) => `"${pieces.join('')}"`)
  .filter((text) => {
    try {
      return typeof JSON.parse(text) === 'string';
    } catch {
      return false;
    }
  });

const keyText = fc.oneof(
  { weight: 8, arbitrary: stringText },
  { weight: 8, arbitrary: fc.constantFrom('"a"', '"b"', '"c"', '"a\\"b"', '"\\u0061"') },
  { weight: 3, arbitrary: fc.constantFrom('"0"', '"1"', '"01"', '"10"', '"4294967295"', '"-1"', '"1.5"') },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '"__proto__"',
      '"__pro\\u0074o__"',
      '"constructor"',
      '"prototype"',
      '"proto\\u0074ype"',
      '"construc\\u0074or"',
    ),
  },
);

const { value: valueText } = fc.letrec<{ value: string; array: string; object: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    numberText,
    stringText,
    fc.constantFrom('true', 'false', 'null'),
    tie('array'),
    tie('object'),
  ),
  array: fc
    .tuple(ws, fc.array(fc.tuple(ws, tie('value'), ws), { maxLength: 4 }))
    .map(([w, items]) => `[${items.length === 0 ? w : items.map(([a, v, b]) => a + v + b).join(',')}]`),
  object: fc
    .tuple(ws, fc.array(fc.tuple(ws, keyText, ws, ws, tie('value'), ws), { maxLength: 4 }))
    .map(
      ([w, members]) =>
        `{${members.length === 0 ? w : members.map(([a, k, b, c, v, d]) => `${a}${k}${b}:${c}${v}${d}`).join(',')}}`,
    ),
}));

const eventText = fc
  .tuple(
    ws,
    fc.option(valueText, { nil: undefined }),
    fc.option(valueText, { nil: undefined }),
    fc.option(fc.constantFrom('"crc":5', '"dataBase64":"aGk="', '"extra":1', '"type":"B"'), {
      nil: undefined,
    }),
  )
  .map(([w, data, metadata, more]) => {
    const members = [`"type"${w}:${w}"Opened"`];
    if (data !== undefined) members.push(`"data"${w}:${w}${data}`);
    if (metadata !== undefined) members.push(`${w}"metadata":${metadata}${w}`);
    if (more !== undefined) members.push(more);
    return `{${w}${members.join(',')}${w}}`;
  });

const bodyText = fc
  .tuple(
    ws,
    fc.array(eventText, { minLength: 1, maxLength: 4 }),
    fc.option(fc.constantFrom('0', '"any"', '[1]'), {
      nil: undefined,
    }),
  )
  .map(([w, events, expected]) => {
    const head = `{${w}"events"${w}:${w}[${w}${events.join(`,${w}`)}${w}]`;
    return `${head}${expected === undefined ? '' : `,${w}"expectedVersion":${expected}`}${w}}`;
  });

describe('parseEventsBody', () => {
  it('stores exactly the bytes JSON.stringify(JSON.parse(…)) stored, and answers the same errors (seeded)', () => {
    let compactSpans = 0;
    let spans = 0;
    fc.assert(
      fc.property(bodyText, (body) => {
        const expected = outcome(parseJsonSafely, body);
        expect(outcome(parseEventsBody, body)).toEqual(expected);
        if ('events' in (expected as object)) {
          const stored = (expected as { events: { data: string; metadata: string }[] }).events;
          const oracle = oracleBytes(body);
          stored.forEach((e, i) => {
            if (!body.includes('dataBase64')) expect(e.data).toBe(oracle[i]?.data);
            expect(e.metadata).toBe(oracle[i]?.metadata);
          });
        }
        if (!('events' in (expected as object))) return;
        const parsed = parseEventsBody(body) as { events?: unknown[] };
        for (const event of parsed.events ?? []) {
          for (const field of [
            (event as { data?: unknown }).data,
            (event as { metadata?: unknown }).metadata,
          ]) {
            if (!(field instanceof JsonText)) continue;
            spans++;
            if (field.canonical) {
              compactSpans++;
              expect(JSON.stringify(JSON.parse(field.text))).toBe(field.text);
            }
          }
        }
      }),
      { seed: 11, numRuns: 3000 },
    );
    // The fast path is taken for a good share of the generated values, not just the fallback.
    expect(compactSpans).toBeGreaterThan(spans / 10);
  });

  it('agrees with the old path on damaged bodies (seeded)', () => {
    const damaged = fc
      .tuple(
        bodyText,
        fc.nat(),
        fc.constantFrom(
          '',
          '"',
          '\\',
          '{',
          '}',
          '[',
          ']',
          ',',
          ':',
          ' ',
          '0',
          '-',
          '.',
          'e',
          'x',
          'n',
          '\u0001',
        ),
        fc.nat(3),
      )
      .map(([body, at, insert, drop]) => {
        const i = at % (body.length + 1);
        return body.slice(0, i) + insert + body.slice(i + drop);
      });
    fc.assert(
      fc.property(damaged, (body) => {
        expect(outcome(parseEventsBody, body)).toEqual(outcome(parseJsonSafely, body));
      }),
      { seed: 12, numRuns: 5000 },
    );
  });

  it('keeps compact data as its source text and normalises anything else', () => {
    const body = (data: string) => `{"events":[{"type":"A","data":${data}}]}`;
    const span = (data: string) =>
      (parseEventsBody(body(data)) as { events: { data: JsonText }[] }).events[0]?.data as JsonText;
    expect(span('{"a":1,"b":[true,null,"x\\n"]}')).toEqual(
      new JsonText('{"a":1,"b":[true,null,"x\\n"]}', true),
    );
    for (const [written, stored] of [
      ['{ "a": 1 }', '{"a":1}'],
      ['{"b":1,"a":2,"b":3}', '{"b":3,"a":2}'],
      ['{"b":1,"1":2}', '{"1":2,"b":1}'],
      ['[1.0,1e2,-0,12345678901234567890]', '[1,100,0,12345678901234567000]'],
      ['"\\u0041\\/"', '"A/"'],
      ['"\\ud800"', '"\\ud800"'],
    ] as const) {
      const text = span(written);
      expect(text.canonical).toBe(false);
      expect(text.compact()).toBe(stored);
    }
  });

  it('refuses nesting past 64 levels and prototype keys inside data, with the old errors', () => {
    // The body is level 1, events 2, the event 3, so data may nest 61 arrays deep.
    const nested = (levels: number) =>
      `{"events":[{"type":"A","data":${'['.repeat(levels)}${']'.repeat(levels)}}]}`;
    expect(outcome(parseEventsBody, nested(61))).toEqual(outcome(parseJsonSafely, nested(61)));
    expect((parseEventsBody(nested(61)) as { events: { data: unknown }[] }).events[0]?.data).toBeInstanceOf(
      JsonText,
    );
    for (const body of [
      nested(62),
      nested(10_000),
      '{"events":[{"type":"A","data":{"__proto__":{}}}]}',
      '{"events":[{"type":"A","data":{"__pro\\u0074o__":1}}]}',
      '{"events":[{"type":"A","data":{"constructor":{"prototype":1}}}]}',
      '{"events":[{"type":"A","metadata":[{"constructor":{"proto\\u0074ype":{}}}]}]}',
      '{"events":[{"type":"A","__proto__":1}]}',
      '{"__proto__":{"events":[]}}',
    ]) {
      expect(() => parseEventsBody(body)).toThrow(RingStoreError);
      expect(outcome(parseEventsBody, body)).toEqual(outcome(parseJsonSafely, body));
      expect(outcome(parseEventsBody, body)).toMatchObject({ code: 'INVALID_JSON' });
    }
  });
});
