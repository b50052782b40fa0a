import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/api/event-store.js';
import { isCompactJson, parseEventsBody } from '../../src/api/http/events-body.js';
import { JsonBytes, JsonText } from '../../src/api/http/events-scan.js';
import { publicError } from '../../src/api/http/http-errors.js';
import { ingestResults } from '../../src/api/http/ingest.js';
import { assertSafeJsonValue, parseJsonSafely } from '../../src/api/http/safe-json.js';
import {
  decodeEvents,
  decodePutBody,
  isCanonicalJson,
  isPlainObject,
  putOptions,
} from '../../src/api/http/wire.js';
import { RingStoreError } from '../../src/errors.js';
import type { EventInput, PutResult } from '../../src/types.js';
import { ingestOptions } from '../support/ingest-options.js';
import { PUT_RESULT } from '../support/put-result.js';

/**
 * The scans must never change what an append stores or answers. The oracle is the path they
 * replaced: parseJsonSafely (JSON.parse and the safety walk) of the whole body as the API decoded
 * it, then every event's data and metadata stored as JSON.stringify of the parsed value. A body
 * that is not valid UTF-8 is refused (INVALID_JSON) before any scan: decoding it would store U+FFFD
 * where the client sent other bytes.
 */

const SEED = Number(process.env.RINGSTORE_SEED ?? 20_261_125);

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

/** A scanned data or metadata value as text: its source, whether it is canonical, what is stored. */
function spanOf(field: unknown): { text: string; canonical: boolean; compact: string } | undefined {
  if (field instanceof JsonBytes) {
    const text = Buffer.from(field.bytes).toString('utf8');
    return { text, canonical: true, compact: text };
  }
  if (field instanceof JsonText) return { text: field.text, canonical: false, compact: field.compact() };
  return undefined;
}

/**
 * The test's text as bytes that are not UTF-8 wherever it has a U+FFFD or a lone surrogate (each
 * written as the byte 0xFF, which decodes to one U+FFFD) or an event type (a 0xFF is put at the
 * start of its string).
 */
function notUtf8(body: string): Buffer {
  const marked = Buffer.from(body.replace(/("type"\s*:\s*")/g, '$1\ufffd'), 'utf8');
  const out: number[] = [];
  for (let i = 0; i < marked.length; i++) {
    if (marked[i] === 0xef && marked[i + 1] === 0xbf && marked[i + 2] === 0xbd) {
      out.push(0xff);
      i += 2;
    } else out.push(marked[i] as number);
  }
  return Buffer.from(out);
}

/**
 * parseEventsBody given the test's text as its UTF-8. `received` is the text the oracle parses:
 * the bytes as the API decodes them, which differs from the test's text where that holds a lone
 * surrogate (UTF-8 cannot carry one, Buffer.from writes U+FFFD).
 */
const SCANS = [
  {
    name: 'parseEventsBody (UTF-8 bytes)',
    bytes: (body: string) => Buffer.from(body, 'utf8'),
  },
].map(({ name, bytes }) => ({
  name,
  bytes,
  parse: (body: string) => parseEventsBody(bytes(body)),
  received: (body: string) => bytes(body).toString('utf8'),
}));

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

describe.each(SCANS)('$name', ({ name, bytes, parse, received }) => {
  it('stores exactly the bytes JSON.stringify(JSON.parse(…)) stored, and answers the same errors (seeded)', () => {
    let compactSpans = 0;
    let spans = 0;
    fc.assert(
      fc.property(bodyText, (written) => {
        expect(isUtf8(bytes(written)), name).toBe(true);
        const body = received(written);
        const expected = outcome(parseJsonSafely, body);
        expect(outcome(parse, written)).toEqual(expected);
        if ('events' in (expected as object)) {
          const stored = (expected as { events: { data: string; metadata: string }[] }).events;
          const oracle = oracleBytes(body);
          stored.forEach((e, i) => {
            if (!body.includes('dataBase64')) expect(e.data).toBe(oracle[i]?.data);
            expect(e.metadata).toBe(oracle[i]?.metadata);
          });
        }
        if (!('events' in (expected as object))) return;
        const parsed = parse(written) as { events?: unknown[] };
        for (const event of parsed.events ?? []) {
          for (const field of [
            (event as { data?: unknown }).data,
            (event as { metadata?: unknown }).metadata,
          ]) {
            const span = spanOf(field);
            if (span === undefined) continue;
            spans++;
            if (span.canonical) {
              compactSpans++;
              expect(JSON.stringify(JSON.parse(span.text))).toBe(span.text);
            }
          }
        }
      }),
      { seed: 11, numRuns: 3000 },
    );
    // The fast path is taken for a good share of the generated values, not just the parse.
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
        expect(outcome(parse, body)).toEqual(outcome(parseJsonSafely, received(body)));
      }),
      { seed: 12, numRuns: 5000 },
    );
  });

  it('keeps compact data as its source text and normalises anything else', () => {
    const body = (data: string) => `{"events":[{"type":"A","data":${data}}]}`;
    const span = (data: string) =>
      spanOf((parse(body(data)) as { events: { data: unknown }[] }).events[0]?.data);
    expect(span('{"a":1,"b":[true,null,"x\\n"]}')).toEqual({
      text: '{"a":1,"b":[true,null,"x\\n"]}',
      canonical: true,
      compact: '{"a":1,"b":[true,null,"x\\n"]}',
    });
    for (const [written, stored] of [
      ['{ "a": 1 }', '{"a":1}'],
      ['{"b":1,"a":2,"b":3}', '{"b":3,"a":2}'],
      ['{"b":1,"1":2}', '{"1":2,"b":1}'],
      ['[1.0,1e2,-0,12345678901234567890]', '[1,100,0,12345678901234567000]'],
      ['"\\u0041\\/"', '"A/"'],
      ['"\\ud800"', '"\\ud800"'],
    ] as const) {
      const text = span(written);
      expect(text?.canonical).toBe(false);
      expect(text?.compact).toBe(stored);
    }
    // Keys are checked for repeats against each other only up to 64 in one object: past that, the
    // object is stored through JSON.parse and JSON.stringify (linear time, the same bytes).
    const object = (keys: number, repeat = '') =>
      `{${Array.from({ length: keys }, (_, i) => `"k${i}":${i}`).join(',')}${repeat}}`;
    expect(span(object(64))?.canonical).toBe(true);
    for (const written of [object(65), object(5000), object(70, ',"k3":"again"')]) {
      const text = span(written);
      expect(text?.canonical).toBe(false);
      expect(text?.compact).toBe(JSON.stringify(JSON.parse(written)));
    }
  });

  it('refuses nesting past 64 levels and prototype keys inside data, with the old errors', () => {
    // The body is level 1, events 2, the event 3, so data may nest 61 arrays deep.
    const nested = (levels: number) =>
      `{"events":[{"type":"A","data":${'['.repeat(levels)}${']'.repeat(levels)}}]}`;
    expect(outcome(parse, nested(61))).toEqual(outcome(parseJsonSafely, received(nested(61))));
    expect(spanOf((parse(nested(61)) as { events: { data: unknown }[] }).events[0]?.data)).toBeDefined();
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
      expect(() => parse(body)).toThrow(RingStoreError);
      expect(outcome(parse, body)).toEqual(outcome(parseJsonSafely, received(body)));
      expect(outcome(parse, body)).toMatchObject({ code: 'INVALID_JSON' });
    }
  });
});

describe('parseEventsBody on bytes that are not UTF-8', () => {
  it('refuses them with INVALID_JSON, whatever else the body holds (seeded)', () => {
    let marked = 0;
    fc.assert(
      fc.property(bodyText, (written) => {
        // A body with no event type and no U+FFFD has nothing to mark: it stays UTF-8.
        if (isUtf8(notUtf8(written))) return;
        marked++;
        expect(outcome((text) => parseEventsBody(notUtf8(text)), written)).toMatchObject({
          code: 'INVALID_JSON',
          message: expect.stringMatching(/not valid UTF-8/),
        });
      }),
      { seed: 13, numRuns: 2000 },
    );
    expect(marked).toBeGreaterThan(1000);
  });
});

/** Raw characters of every UTF-8 length: noncharacters, U+FEFF, the line separators, the last code point. */
const rawUnicode = fc.constantFrom(
  '\u007f',
  '\u0080',
  'é',
  'ÿ',
  '\u07ff',
  '\u0800',
  '中',
  '\u2028',
  '\u2029',
  '\ufeff',
  '\ufffd',
  '\uffff',
  '😀',
  '𝄞',
  '\u{10000}',
  '\u{10ffff}',
);

const richString = fc
  .array(
    fc.oneof(
      { weight: 300, arbitrary: stringPiece },
      { weight: 200, arbitrary: rawUnicode },
      {
        weight: 100,
        arbitrary: fc
          .string({ unit: 'binary', maxLength: 3 })
          .map((raw) => raw.replace(/["\\\u0000-\u001f]/g, 'é')),
      },
      {
        weight: 200,
        arbitrary: fc.constantFrom('\\/', '\\u0041', '\\n', '\\u00e9', '\\uD83D\\uDE00', '\\u2028'),
      },
      // A raw control character: not JSON.
      { weight: 1, arbitrary: fc.constantFrom('\t', '\u0000', '\u001f') },
    ),
    { maxLength: 6 },
  )
  .map((pieces) => `"${pieces.join('')}"`);

const richNumber = fc.oneof(
  { weight: 200, arbitrary: numberText },
  {
    weight: 100,
    arbitrary: fc.constantFrom(
      '-0',
      '-0.0',
      '-0e0',
      '0.10',
      '1E2',
      '1e+2',
      '1e-0',
      '5e-324',
      '1.7976931348623157e308',
      '2e308',
      '-1e-400',
      '0.000001',
      '1e-7',
      '1e20',
      '1e21',
      '999999999999999',
      '1000000000000000',
      '-123456789012345',
      '123456789012345678',
      '-9007199254740993',
      '4.35',
      '0.1e1',
      '10.0e-1',
    ),
  },
  // Not JSON numbers.
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '01',
      '-',
      '1.',
      '.1',
      '+1',
      '1e',
      '1e+',
      '--1',
      '0x10',
      'NaN',
      '-01',
      '1.e1',
      '00',
    ),
  },
);

const richKey = fc.oneof(
  { weight: 30, arbitrary: keyText },
  { weight: 15, arbitrary: richString },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '"__proto__"',
      '"\\u005f_proto__"',
      '"constructor"',
      '"prototype"',
      '"é"',
      '"😀"',
      '"9"',
      '"4294967294"',
      '"4294967295"',
      '"-0"',
      '"00"',
      '"data"',
    ),
  },
);

/** Byte sequences that are not UTF-8: stray continuations, overlongs, surrogates, past U+10FFFF, cut. */
const NOT_UTF8 = [
  [0x80],
  [0xbf],
  [0xc0, 0x80],
  [0xc1, 0xbf],
  [0xc2],
  [0xe0, 0x80, 0x80],
  [0xe0, 0xa0],
  [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf],
  [0xf0, 0x8f, 0xbf, 0xbf],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf5, 0x80, 0x80, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0xfe],
  [0xff],
  [0xf0, 0x9f, 0x98],
];
/** Valid UTF-8 at the edges of each length, the BOM, and ASCII that breaks the JSON. */
const OTHER_INSERTS = [
  [],
  [0xc2, 0x80],
  [0xef, 0xbb, 0xbf],
  [0xef, 0xbf, 0xbf],
  [0xf4, 0x8f, 0xbf, 0xbf],
  ...[...'"\\{}[],: 0-.ex\t\r'].map((c) => [c.charCodeAt(0)]),
  [0x01],
];

interface Edit {
  at: number;
  bytes: number[];
  drop: number;
  /** `at` counts quotes instead of bytes: the insertion goes right after one, often into a string. */
  afterQuote: boolean;
}

/** Insertions of `bytes` at `at` (modulo the length), after dropping `drop` bytes there. */
const edits = fc.oneof(
  { weight: 2, arbitrary: fc.constant([]) },
  {
    weight: 1,
    arbitrary: fc.array(
      fc.record({
        at: fc.nat(),
        bytes: fc.oneof(
          { weight: 3, arbitrary: fc.constantFrom(...NOT_UTF8) },
          { weight: 2, arbitrary: fc.constantFrom(...OTHER_INSERTS) },
        ),
        drop: fc.nat(3),
        afterQuote: fc.boolean(),
      }),
      { minLength: 1, maxLength: 2 },
    ),
  },
);

function applyEdits(text: string, changes: readonly Edit[]): Buffer {
  let bytes = Buffer.from(text, 'utf8');
  for (const { at, bytes: insert, drop, afterQuote } of changes) {
    let i = at % (bytes.length + 1);
    if (afterQuote) {
      const quotes = [...bytes.entries()].filter(([, b]) => b === 0x22).map(([k]) => k + 1);
      i = quotes.length === 0 ? i : (quotes[at % quotes.length] as number);
    }
    bytes = Buffer.concat([
      bytes.subarray(0, i),
      Buffer.from(insert),
      bytes.subarray(i + (afterQuote ? 0 : drop)),
    ]);
  }
  return bytes;
}

/** Usually none of `members`, sometimes one or two. */
const rarely = (members: string[]) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constant([]) },
    { weight: 1, arbitrary: fc.subarray(members, { minLength: 1, maxLength: 2 }) },
  );

/** Append bodies and NDJSON lines with whitespace from `w` everywhere whitespace may go. */
function jsonTexts(w: fc.Arbitrary<string>) {
  const { value } = fc.letrec<{ value: string; array: string; object: string }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      richNumber,
      richString,
      fc.oneof(
        { weight: 200, arbitrary: fc.constantFrom('true', 'false', 'null') },
        { weight: 1, arbitrary: fc.constantFrom('tru', 'nul', 'True') },
      ),
      tie('array'),
      tie('object'),
    ),
    array: fc
      .tuple(w, fc.array(fc.tuple(w, tie('value'), w), { maxLength: 4 }))
      .map(([a, items]) => `[${items.length === 0 ? a : items.map(([b, v, c]) => b + v + c).join(',')}]`),
    object: fc
      .tuple(w, fc.array(fc.tuple(w, richKey, w, w, tie('value'), w), { maxLength: 4 }))
      .map(
        ([a, members]) =>
          `{${members.length === 0 ? a : members.map(([b, k, c, d, v, e]) => `${b}${k}${c}:${d}${v}${e}`).join(',')}}`,
      ),
  }));
  // Data nests 3 levels below the body, and the body allows 64: around 61 levels either way.
  const deep = fc
    .tuple(fc.integer({ min: 57, max: 63 }), fc.array(fc.boolean(), { minLength: 63, maxLength: 63 }), value)
    .map(([levels, kinds, inner]) => {
      let text = inner;
      for (let l = 0; l < levels; l++) text = kinds[l] ? `[${text}]` : `{"k":${text}}`;
      return text;
    });
  const data = fc.oneof({ weight: 12, arbitrary: value }, { weight: 1, arbitrary: deep });
  const rotate = (members: string[], by: number) => [
    ...members.slice(by % members.length),
    ...members.slice(0, by % members.length),
  ];
  const event = fc
    .tuple(
      w,
      w,
      fc.constantFrom('"Opened"', '"Opened"', '"Opened"', '"é😀"', '"A\\u0042"'),
      fc.option(data),
      fc.option(data),
      rarely([
        '"crc":5',
        '"crc":-0',
        '"crc":1e400',
        '"dataBase64":"aGk="',
        '"metadataBase64":""',
        '"extra":1',
        '"type":"B"',
        '"data":[1, 2]',
        '"metadata":null',
        '"__proto__":1',
        '"constructor":{"prototype":1}',
        '"typ\\u0065":"C"',
        '"d\\u0061ta":{"a":1}',
        '"type":5',
      ]),
      fc.nat(),
    )
    .map(([a, b, type, data, metadata, extras, by]) => {
      const members = [`${a}"type"${b}:${a}${type}`];
      if (data !== null) members.push(`"data"${b}:${data}${a}`);
      if (metadata !== null) members.push(`${b}"metadata"${a}:${b}${metadata}`);
      return `{${rotate([...members, ...extras], by).join(',')}${b}}`;
    });
  const events = fc
    .tuple(
      w,
      w,
      fc.oneof(
        { weight: 20, arbitrary: fc.array(event, { minLength: 1, maxLength: 4 }) },
        { weight: 1, arbitrary: fc.constant([]) },
      ),
    )
    .map(([a, b, list]) => `[${b}${list.join(`${a},${b}`)}${a}]`);
  const body = fc
    .tuple(
      w,
      w,
      events,
      rarely([
        '"expectedVersion":0',
        '"expectedVersion":"any"',
        '"expectedVersion":[1]',
        '"expectedVersion":1.0',
        '"idempotencyKey":"k😀"',
        '"idempotencyKey":"k\\u00e9"',
        '"events":[]',
        '"__proto__":{}',
        '"extra":[[[1]]]',
        '"constructor":{"prototype":{}}',
      ]),
      fc.option(deep, { freq: 10 }),
      fc.nat(),
    )
    .map(([a, b, list, extras, version, by]) => {
      const members = [`${a}"events"${b}:${a}${list}`, ...extras];
      if (version !== null) members.push(`"expectedVersion":${b}${version}`);
      return `${a}{${rotate(members, by).join(',')}${b}}${a}`;
    });
  const line = fc
    .tuple(
      w,
      w,
      events,
      fc.constantFrom('"d"', '"billing"', '"dé"', '"d\\u0065"', '5'),
      fc.constantFrom('"t"', '"invoice"', '"t😀"'),
      fc.constantFrom('"1"', '"42"', '7', '"x"'),
      rarely([
        '"expectedVersion":0',
        '"expectedVersion":"none"',
        '"idempotencyKey":"k"',
        '"extra":1',
        '"domain":"other"',
        '"__proto__":1',
      ]),
      fc.nat(),
    )
    .map(([a, b, list, domain, type, id, extras, by]) => {
      const members = [
        `${a}"domain"${b}:${domain}`,
        `"aggregateType":${a}${type}${b}`,
        `"id":${id}`,
        `"events"${a}:${b}${list}`,
        ...extras,
      ];
      return `${a}{${rotate(members, by).join(',')}${b}}${a}`;
    });
  return { body, line, data };
}

const bodyWs = fc.constantFrom('', '', '', '', ' ', '\n', '\t', '\r', '\r\n  ', '\n\t');
/** No newline: it would end the NDJSON line. */
const lineWs = fc.constantFrom('', '', '', '', ' ', '\t', '\r', ' \t\r ');
const bodies = jsonTexts(bodyWs);
const lines = jsonTexts(lineWs);
/** Without whitespace: the form most values are canonical in, where a missed rule shows. */
const compact = jsonTexts(fc.constant(''));

const errorOutcome = (err: unknown) => {
  if (!(err instanceof RingStoreError)) throw err;
  return { code: err.code, message: err.message, details: err.details };
};

const storedEvent = (e: EventInput) => ({
  type: e.type,
  crc: e.crc,
  data: hex(e.data),
  metadata: hex(e.metadata),
});

/** What the API makes of a parsed body or line: its other fields and each event's stored bytes, or the error. */
function stored(parse: () => unknown): unknown {
  try {
    const record = parse();
    if (!isPlainObject(record)) return { notAnObject: record };
    const { events, ...envelope } = record;
    return { envelope, events: decodeEvents(events).map(storedEvent) };
  } catch (err) {
    return errorOutcome(err);
  }
}

/**
 * A parsed body (a scan's or parseJsonSafely's) with every object as its entries, keys in order,
 * and the scan's unparsed values parsed, or its error.
 */
function shape(parse: () => unknown): unknown {
  const walk = (value: unknown): unknown => {
    if (value instanceof JsonBytes) return walk(JSON.parse(Buffer.from(value.bytes).toString('utf8')));
    if (value instanceof JsonText) return walk(JSON.parse(value.text));
    if (Array.isArray(value)) return value.map(walk);
    if (isPlainObject(value)) return Object.entries(value).map(([k, v]) => [k, walk(v)]);
    return value;
  };
  try {
    return { value: walk(parse()) };
  } catch (err) {
    return errorOutcome(err);
  }
}

/** Levels of arrays and objects in a parsed value. */
function nesting(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  let deepest = 0;
  for (const item of Object.values(value)) deepest = Math.max(deepest, nesting(item));
  return deepest + 1;
}

function catchError(run: () => unknown): unknown {
  try {
    run();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}

/** Every JsonBytes in a scan's result. */
function views(value: unknown, out: JsonBytes[] = []): JsonBytes[] {
  if (value instanceof JsonBytes) out.push(value);
  else if (Array.isArray(value)) for (const item of value) views(item, out);
  else if (isPlainObject(value)) for (const item of Object.values(value)) views(item, out);
  return out;
}

describe(`parseEventsBody on random bytes (seed ${SEED})`, () => {
  it('refuses bytes that are not UTF-8, and accepts, refuses, parses and stores the rest exactly as parseJsonSafely', () => {
    let accepted = 0;
    let refused = 0;
    let notUtf8Refused = 0;
    let multibyteViews = 0;
    let deepAccepted = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          { weight: 5, arbitrary: bodies.body },
          { weight: 5, arbitrary: compact.body },
          { weight: 3, arbitrary: bodies.line },
          { weight: 3, arbitrary: compact.line },
          { weight: 1, arbitrary: fc.constantFrom('[1]', '"x"', '5', '', ' ', '{}') },
        ),
        edits,
        (text, changes) => {
          const bytes = applyEdits(text, changes);
          if (!isUtf8(bytes)) {
            notUtf8Refused++;
            expect(stored(() => parseEventsBody(bytes))).toMatchObject({ code: 'INVALID_JSON' });
            return;
          }
          const decoded = bytes.toString('utf8');
          const expected = stored(() => parseJsonSafely(decoded));
          expect(stored(() => parseEventsBody(bytes))).toEqual(expected);
          // The same value as parseJsonSafely, keys in order, or the same error.
          expect(shape(() => parseEventsBody(bytes))).toEqual(shape(() => parseJsonSafely(decoded)));
          if ('code' in (expected as object)) {
            refused++;
            return;
          }
          accepted++;
          if (nesting(JSON.parse(decoded)) >= 62) deepAccepted++;
          // A canonical value is a view of the body itself, not a copy, and its bytes are the
          // compact form.
          for (const view of views(parseEventsBody(bytes))) {
            const json = Buffer.from(view.bytes).toString('utf8');
            expect(JSON.stringify(JSON.parse(json))).toBe(json);
            expect(view.bytes.buffer).toBe(bytes.buffer);
            expect(view.bytes.byteOffset).toBeGreaterThanOrEqual(bytes.byteOffset);
            expect(view.bytes.byteOffset + view.bytes.byteLength).toBeLessThanOrEqual(
              bytes.byteOffset + bytes.byteLength,
            );
            if (view.bytes.some((b) => b >= 0x80)) multibyteViews++;
          }
        },
      ),
      { seed: SEED, numRuns: 4000 },
    );
    // The runs must cover each kind, not only refusals.
    expect(accepted, `seed ${SEED}`).toBeGreaterThan(1000);
    expect(refused, `seed ${SEED}`).toBeGreaterThan(1500);
    expect(notUtf8Refused, `seed ${SEED}`).toBeGreaterThan(600);
    expect(multibyteViews, `seed ${SEED}`).toBeGreaterThan(200);
    expect(deepAccepted, `seed ${SEED}`).toBeGreaterThan(300);
  });

  it('keeps canonical multi-byte and astral data as a view of the body; refuses bytes that are not UTF-8', () => {
    const body = Buffer.from(
      '{"events":[{"type":"A","data":{"é":"中😀\u2028"},"metadata":"\ufeff"}]}',
      'utf8',
    );
    const event = (parseEventsBody(body) as { events: { data: JsonBytes; metadata: JsonBytes }[] })
      .events[0] as { data: JsonBytes; metadata: JsonBytes };
    expect(event.data).toBeInstanceOf(JsonBytes);
    expect(Buffer.from(event.data.bytes).toString()).toBe('{"é":"中😀\u2028"}');
    expect(event.metadata.bytes.buffer).toBe(body.buffer);
    const notUtf8Bodies = [
      // A surrogate encoded in UTF-8 (CESU): decoded, each of its bytes would have become U+FFFD.
      Buffer.concat([
        Buffer.from('{"events":[{"type":"A","data":"'),
        Buffer.from([0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80]),
        Buffer.from('"}]}'),
      ]),
      // An overlong encoding and a stray byte inside a value that is not compact.
      Buffer.concat([
        Buffer.from('{"events":[{"type":"A","data":[ "'),
        Buffer.from([0xff, 0xc0, 0x80]),
        Buffer.from('", 1.0 ]}]}'),
      ]),
      // Broken JSON and too deep as well: the UTF-8 check comes first.
      Buffer.concat([Buffer.from('{"events":[{"type":"'), Buffer.from([0xff]), Buffer.from('"')]),
      Buffer.concat([
        Buffer.from('{"events":[{"type":"'),
        Buffer.from([0xff]),
        Buffer.from(`","data":${'['.repeat(62)}${']'.repeat(62)}}]}`),
      ]),
    ];
    for (const bytes of notUtf8Bodies) {
      expect(isUtf8(bytes)).toBe(false);
      expect(errorOutcome(catchError(() => parseEventsBody(bytes)))).toMatchObject({
        code: 'INVALID_JSON',
        message: 'the JSON text is not valid UTF-8 (RFC 8259 requires UTF-8)',
      });
    }
  });
});

const LINE_KEYS = ['domain', 'aggregateType', 'id', 'events', 'expectedVersion', 'idempotencyKey'];

/**
 * What POST /v1/ingest answers and stores, by the path the bytes scan replaced (a line that is not
 * UTF-8 refused first), for a store that takes every put.
 */
function referenceIngest(body: Buffer): { results: unknown[]; puts: unknown[] } {
  const results: unknown[] = [];
  const puts: unknown[] = [];
  for (let start = 0; start <= body.length; ) {
    const end = body.indexOf(0x0a, start);
    const bytes = body.subarray(start, end === -1 ? body.length : end);
    const text = bytes.toString('utf8');
    start = end === -1 ? body.length + 1 : end + 1;
    if (/^[ \t\r]*$/.test(text)) continue;
    try {
      if (!isUtf8(bytes)) {
        throw new RingStoreError(
          'INVALID_JSON',
          'the JSON text is not valid UTF-8 (RFC 8259 requires UTF-8)',
        );
      }
      const record = parseJsonSafely(text);
      if (!isPlainObject(record))
        throw new RingStoreError('INVALID_BATCH', 'each line must be a JSON object');
      for (const key in record) {
        if (!LINE_KEYS.includes(key)) {
          throw new RingStoreError('INVALID_BATCH', `unknown field ${JSON.stringify(key.slice(0, 40))}`);
        }
      }
      const events = decodeEvents(record.events);
      if (typeof record.domain !== 'string') {
        throw new RingStoreError('INVALID_NAME', 'domain must be a string', { kind: 'domain' });
      }
      puts.push({
        domain: record.domain,
        aggregateType: record.aggregateType,
        id: record.id,
        events: events.map(storedEvent),
        options: putOptions(record),
      });
      const { durability: _, replayed: __, ...wire } = PUT_RESULT;
      results.push({ ok: true, ...wire });
    } catch (err) {
      results.push(JSON.parse(JSON.stringify({ ok: false, error: publicError(err as RingStoreError) })));
    }
  }
  return { results, puts };
}

describe(`NDJSON ingest on random bytes (seed ${SEED})`, () => {
  it('answers and stores every line as the reference, however the body is cut into chunks', async () => {
    const line = fc.oneof(
      {
        weight: 8,
        arbitrary: fc
          .tuple(fc.oneof(lines.line, compact.line), edits)
          .map(([text, changes]) => applyEdits(text, changes)),
      },
      {
        weight: 2,
        arbitrary: fc
          .constantFrom('', ' ', '\t', '\r', ' \t \r', '{not json', '[1]', '\u00a0', '\ufeff{}')
          .map((t) => Buffer.from(t, 'utf8')),
      },
    );
    let okLines = 0;
    let notUtf8Lines = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(line, { minLength: 1, maxLength: 8 }),
        fc.constantFrom('\n', '\r\n'),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 12 }),
        async (lineBytes, newline, lastNewline, offsets) => {
          const parts = lineBytes.flatMap((l) => [l, Buffer.from(newline)]);
          if (!lastNewline) parts.pop();
          const body = Buffer.concat(parts);
          const puts: unknown[] = [];
          const store = {
            put(domain: string, aggregateType: string, id: unknown, events: EventInput[], options: unknown) {
              puts.push({ domain, aggregateType, id, events, options });
              return new Promise<PutResult>((resolve) => setImmediate(() => resolve(PUT_RESULT)));
            },
          } as unknown as EventStore;
          async function* chunks() {
            const points = [...new Set(offsets.map((o) => o % (body.length + 1)))].sort((a, b) => a - b);
            let start = 0;
            for (const point of points) {
              yield body.subarray(start, point);
              start = point;
            }
            yield body.subarray(start);
          }
          let answer = '';
          for await (const text of ingestResults(chunks(), ingestOptions(store, 3))) {
            answer += text;
          }
          const expected = referenceIngest(body);
          const results =
            answer.length === 0
              ? []
              : answer
                  .trimEnd()
                  .split('\n')
                  .map((l) => JSON.parse(l));
          expect(results).toEqual(expected.results);
          // Compared after the whole body went through: the stored views stayed intact.
          const got = (puts as { events: EventInput[] }[]).map((p) => ({
            ...p,
            events: p.events.map(storedEvent),
          }));
          expect(got).toEqual(expected.puts);
          okLines += expected.puts.length;
          notUtf8Lines += lineBytes.filter((l) => !isUtf8(l)).length;
        },
      ),
      { seed: SEED, numRuns: 400 },
    );
    expect(okLines, `seed ${SEED}`).toBeGreaterThan(300);
    expect(notUtf8Lines, `seed ${SEED}`).toBeGreaterThan(250);
  });
});

/**
 * The read side's rule for stored data, written out as docs/HTTP.md states it: the text of bytes
 * that are UTF-8, parse, serialise back to the same text and pass parseJsonSafely's checks.
 */
function canonicalByTheRule(bytes: Buffer): string | undefined {
  if (!isUtf8(bytes)) return undefined;
  const text = bytes.toString('utf8');
  try {
    const value: unknown = JSON.parse(text);
    if (JSON.stringify(value) !== text) return undefined;
    assertSafeJsonValue(value);
    return text;
  } catch {
    return undefined;
  }
}

describe(`isCompactJson on stored data (seed ${SEED})`, () => {
  it('vouches only for bytes the rule calls canonical, and for most of them; isCanonicalJson is the rule', () => {
    let vouched = 0;
    let canonical = 0;
    let other = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          { weight: 4, arbitrary: compact.data },
          { weight: 2, arbitrary: bodies.data },
          { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
        ),
        edits,
        fc.boolean(),
        (text, changes, edited) => {
          const bytes = edited ? applyEdits(text, changes) : Buffer.from(text, 'utf8');
          const expected = canonicalByTheRule(bytes);
          if (isCompactJson(bytes)) {
            vouched++;
            expect(expected).toBe(bytes.toString('utf8'));
          }
          if (expected === undefined) other++;
          else canonical++;
          expect(isCanonicalJson(bytes)).toBe(expected !== undefined);
        },
      ),
      { seed: SEED, numRuns: 4000 },
    );
    expect(other, `seed ${SEED}`).toBeGreaterThan(800);
    expect(canonical, `seed ${SEED}`).toBeGreaterThan(800);
    expect(vouched, `seed ${SEED}`).toBeGreaterThan(0.8 * canonical);
  });
});
