/**
 * The forms in which the scanner of append bodies and NDJSON lines (events-body.ts, which documents
 * the canonical-form rules) leaves an event's `data` and `metadata` unparsed, and the byte codes of
 * the JSON grammar it checks. Every character the grammar names is ASCII, one byte in UTF-8.
 */

/**
 * A `data` or `metadata` value kept as the text it was written as, which is not (or not known to
 * be) its compact form: the stored text is JSON.stringify(JSON.parse(text)).
 */
export class JsonText {
  constructor(
    /** The value's source text, without the whitespace around it. */
    readonly text: string,
  ) {}

  /** The compact JSON text that is stored for this value. */
  compact(): string {
    return JSON.stringify(JSON.parse(this.text));
  }
}

/**
 * A `data` or `metadata` value whose source bytes are already the UTF-8 of
 * JSON.stringify(JSON.parse(source)), so they are stored as they are: a view of the body, never
 * decoded or copied before the store copies it into its ring.
 */
export class JsonBytes {
  constructor(readonly bytes: Uint8Array) {}
}

/** Thrown inside a scan for anything it does not accept; never leaves the scanner. */
export const REFUSED = new Error('refused by the events body scanner');

export const QUOTE = 0x22;
export const BACKSLASH = 0x5c;
export const COMMA = 0x2c;
export const COLON = 0x3a;
export const OPEN_BRACE = 0x7b;
export const CLOSE_BRACE = 0x7d;
export const OPEN_BRACKET = 0x5b;
export const CLOSE_BRACKET = 0x5d;
export const MINUS = 0x2d;
export const PLUS = 0x2b;
export const DOT = 0x2e;
export const ZERO = 0x30;
export const NINE = 0x39;

/** Integers of at most this many digits are printed back by JSON.stringify as written. */
export const SAFE_INTEGER_DIGITS = 15;

/** What a value is scanned as: the body, an event (both built), or anything else (parsed). */
export type Mode = 'root' | 'event' | 'plain';

/** The field names of append bodies, NDJSON lines and events. */
export const ENVELOPE_KEYS = [
  'type',
  'data',
  'metadata',
  'crc',
  'dataBase64',
  'metadataBase64',
  'events',
  'expectedVersion',
  'idempotencyKey',
  'domain',
  'aggregateType',
  'id',
] as const;

/** `\b \f \n \r \t \" \\`: the escapes JSON.stringify writes itself (`\/` and `\u` are not compact). */
export function isCompactEscape(e: number): boolean {
  return e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74 || e === QUOTE || e === BACKSLASH;
}

export function isDigit(c: number): boolean {
  return c >= ZERO && c <= NINE;
}

export function isHex(c: number): boolean {
  return (c >= ZERO && c <= NINE) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}
