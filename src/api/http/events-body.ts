import { isUtf8 } from 'node:buffer';
import { NameCache } from '../../model/name-cache.js';
import { JsonBytes, JsonText } from './events-scan.js';
import { checkUtf8, MAX_JSON_DEPTH, parseJsonSafely } from './safe-json.js';

/** Thrown inside a scan for anything it does not accept; never leaves this module. */
const REFUSED = new Error('refused by the events body scanner');

// The byte codes of the JSON grammar the scan checks: every character it names is ASCII, one byte
// in UTF-8.
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

/** Integers of at most this many digits are printed back by JSON.stringify as written. */
const SAFE_INTEGER_DIGITS = 15;

/**
 * Keys of one object in data or metadata that the scan checks for repeats (each against those
 * before it): an object with more is stored through JSON.parse and JSON.stringify, so a body of many
 * keys costs linear time, not quadratic.
 */
const MAX_CHECKED_KEYS = 64;

/** The fields whose string values are names that repeat from body to body (see #name). */
const NAME_KEYS = new Set(['type', 'domain', 'aggregateType']);
/** Names of at most this many bytes are decoded through the cache (the longest valid event type). */
const SHORT_NAME_BYTES = 128;
/** As Buffer's toString('utf8'): a leading U+FEFF is kept (a default TextDecoder drops it). */
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });
/** Names of bodies seen before, on the thread that scans bodies. */
const names = new NameCache((bytes) => utf8.decode(bytes));

/** What a value is scanned as: the body, an event (both built), or anything else (parsed). */
type Mode = 'root' | 'event' | 'plain';

/** The field names of append bodies, NDJSON lines and events. */
const ENVELOPE_KEYS = [
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

/**
 * `out[key] = value`, as JSON.parse sets it (a repeated key keeps its place and takes the last
 * value). The fields of the API's bodies are set by name: each such store sees few object shapes,
 * where one keyed store for every field would see all of them and fall back to a generic lookup.
 */
function setField(out: Record<string, unknown>, key: string, value: unknown): void {
  switch (key) {
    case 'type':
      out.type = value;
      return;
    case 'data':
      out.data = value;
      return;
    case 'metadata':
      out.metadata = value;
      return;
    case 'domain':
      out.domain = value;
      return;
    case 'aggregateType':
      out.aggregateType = value;
      return;
    case 'id':
      out.id = value;
      return;
    default:
      out[key] = value;
  }
}

/** `\b \f \n \r \t \" \\`: the escapes JSON.stringify writes itself (`\/` and `\u` are not compact). */
function isCompactEscape(e: number): boolean {
  return e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74 || e === QUOTE || e === BACKSLASH;
}

function isDigit(c: number): boolean {
  return c >= ZERO && c <= NINE;
}

function isHex(c: number): boolean {
  return (c >= ZERO && c <= NINE) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/**
 * One pass over the UTF-8 bytes of an append body (or an NDJSON line), or of one stored value that a
 * read answers with (compactValue, for isCompactJson), that validates it and builds only the
 * envelope: `{ events: [ { type, crc, …, data, metadata } ], expectedVersion, … }`. Each
 * event's `data` and `metadata` value is not parsed into objects, nor decoded: the scan notes
 * whether its source bytes are already the UTF-8 of the compact text
 * `JSON.stringify(JSON.parse(source))`. The stored bytes are that UTF-8, as documented in
 * docs/HTTP.md, so a canonical value is a JsonBytes, a view of the body that is stored as it is,
 * and only a value written otherwise (whitespace, escapes such as `\/` or `\u0041`, `1.0`, `-0`,
 * duplicate keys, integer-like keys that JSON.stringify reorders) is decoded into a JsonText, parsed
 * and serialised again.
 *
 * The scan checks what parseJsonSafely checks (syntax, nesting depth, `__proto__` and
 * `constructor.prototype` keys). Whenever it refuses a body, the decoded body goes through
 * parseJsonSafely instead, which throws the error the API always answered with; if that accepts
 * the text after all, its value is returned (with parsed data, which decodeEvents serialises), so
 * the scan never changes what is accepted or what is stored, only how much work it takes.
 *
 * The scan assumes valid UTF-8, which the body is checked to be first (natively; anything else is
 * refused): in valid UTF-8 every byte of a multi-byte character is ≥ 0x80, so it is never mistaken
 * for a quote, a backslash or a control character, and every character it encodes is one
 * JSON.stringify writes as it is (it escapes only `"`, `\`, control characters and lone
 * surrogates, which UTF-8 cannot carry).
 */

/** What #at reads past the end of the body: no byte of the grammar, and not ≥ 0x20 either. */
const END = -1;

class Scanner {
  readonly #b: Buffer;
  readonly #n: number;
  #i: number;
  /** Cleared when the value being scanned is not in JSON.stringify's compact form. */
  #canonical = true;
  /** Start and end offsets of the keys of the objects being scanned, for the duplicate check. */
  readonly #keys: number[] = [];
  #keyCount = 0;
  /** Whether the last string scanned contained an escape. */
  #escaped = false;

  /** Scans `body` from `start` to `end` (the whole body unless given). */
  constructor(body: Buffer, start = 0, end = body.length) {
    this.#b = body;
    this.#i = start;
    this.#n = end;
  }

  /**
   * Whether the whole input is one value in JSON.stringify's compact form that parseJsonSafely
   * accepts (nothing around it, not even whitespace).
   */
  compactValue(): boolean {
    this.#canonical = true;
    this.#value(1, false);
    return this.#i === this.#n && this.#canonical;
  }

  root(): unknown {
    this.#ws();
    const value = this.#member('root', 1, false);
    this.#ws();
    if (this.#i !== this.#n) throw REFUSED;
    return value;
  }

  /** The byte at `i`, or END past the end of the body. */
  #at(i: number): number {
    return i < this.#n ? (this.#b[i] as number) : END;
  }

  /** The body's bytes from `start` to `end`, decoded. */
  #text(start: number, end: number): string {
    return this.#b.toString('utf8', start, end);
  }

  /**
   * As #text, for a name that repeats from body to body (an event type, a domain, an aggregate
   * type): a short one comes from the cache of names seen before, so the same type in every event of
   * a body is one string, decoded once, whose hash later lookups find computed.
   */
  #name(start: number, end: number): string {
    return end - start <= SHORT_NAME_BYTES
      ? names.decode(this.#b, start, end - start)
      : this.#text(start, end);
  }

  /** A value at nesting `depth` (the depth it has if it is an object or array). */
  #member(mode: Mode, depth: number, constructorValue: boolean, isName = false): unknown {
    const c = this.#at(this.#i);
    if (c === OPEN_BRACE && mode !== 'plain') return this.#object(mode, depth);
    if (c === OPEN_BRACKET && mode === 'root') return this.#parsed(depth, false);
    const start = this.#i;
    if (c === QUOTE) {
      this.#string();
      if (!this.#escaped) {
        return isName ? this.#name(start + 1, this.#i - 1) : this.#text(start + 1, this.#i - 1);
      }
      return JSON.parse(this.#text(start, this.#i)) as unknown;
    }
    this.#value(depth, constructorValue);
    return JSON.parse(this.#text(start, this.#i)) as unknown;
  }

  /** Scans any value and returns JSON.parse of its text (containers and literals outside data). */
  #parsed(depth: number, constructorValue: boolean): unknown {
    const start = this.#i;
    this.#value(depth, constructorValue);
    return JSON.parse(this.#text(start, this.#i)) as unknown;
  }

  /** The envelope object (mode 'root') or an event (mode 'event'), built as JSON.parse would. */
  #object(mode: Mode, depth: number): Record<string, unknown> {
    if (depth > MAX_JSON_DEPTH) throw REFUSED;
    const out: Record<string, unknown> = {};
    this.#i++;
    this.#ws();
    if (this.#at(this.#i) === CLOSE_BRACE) {
      this.#i++;
      return out;
    }
    for (;;) {
      if (this.#at(this.#i) !== QUOTE) throw REFUSED;
      const keyStart = this.#i;
      this.#string();
      const key = this.#escaped
        ? (JSON.parse(this.#text(keyStart, this.#i)) as string)
        : this.#knownKey(keyStart);
      if (key === '__proto__') throw REFUSED;
      this.#ws();
      if (this.#at(this.#i) !== COLON) throw REFUSED;
      this.#i++;
      this.#ws();
      const c = this.#at(this.#i);
      if (mode === 'root' && key === 'events' && c === OPEN_BRACKET) {
        out.events = this.#events(depth + 1);
      } else if (mode === 'event' && (key === 'data' || key === 'metadata')) {
        const start = this.#i;
        this.#canonical = true;
        this.#value(depth + 1, false);
        setField(
          out,
          key,
          this.#canonical
            ? new JsonBytes(new Uint8Array(this.#b.buffer, this.#b.byteOffset + start, this.#i - start))
            : new JsonText(this.#text(start, this.#i)),
        );
      } else {
        setField(out, key, this.#member('plain', depth + 1, key === 'constructor', NAME_KEYS.has(key)));
      }
      this.#ws();
      const next = this.#at(this.#i);
      this.#i++;
      if (next === CLOSE_BRACE) return out;
      if (next !== COMMA) throw REFUSED;
      this.#ws();
    }
  }

  #events(depth: number): unknown[] {
    if (depth > MAX_JSON_DEPTH) throw REFUSED;
    const out: unknown[] = [];
    this.#i++;
    this.#ws();
    if (this.#at(this.#i) === CLOSE_BRACKET) {
      this.#i++;
      return out;
    }
    for (;;) {
      out.push(this.#member('event', depth + 1, false));
      this.#ws();
      const next = this.#at(this.#i);
      this.#i++;
      if (next === CLOSE_BRACKET) return out;
      if (next !== COMMA) throw REFUSED;
      this.#ws();
    }
  }

  /** Skips one value, checking it as parseJsonSafely would and noting whether it is compact. */
  #value(depth: number, constructorValue: boolean): void {
    const c = this.#at(this.#i);
    if (c === OPEN_BRACE) this.#skipObject(depth, constructorValue);
    else if (c === OPEN_BRACKET) this.#skipArray(depth);
    else if (c === QUOTE) this.#string();
    else if (c === MINUS || (c >= ZERO && c <= NINE)) this.#number();
    else if (this.#word(this.#i, 'true')) this.#i += 4;
    else if (this.#word(this.#i, 'false')) this.#i += 5;
    else if (this.#word(this.#i, 'null')) this.#i += 4;
    else throw REFUSED;
  }

  #skipObject(depth: number, constructorValue: boolean): void {
    if (depth > MAX_JSON_DEPTH) throw REFUSED;
    const keys = this.#keys;
    const base = this.#keyCount;
    this.#i++;
    this.#ws();
    if (this.#at(this.#i) === CLOSE_BRACE) {
      this.#i++;
      return;
    }
    for (;;) {
      if (this.#at(this.#i) !== QUOTE) throw REFUSED;
      const keyStart = this.#i;
      this.#string();
      const keyEnd = this.#i;
      const first = this.#at(keyStart + 1);
      // JSON.stringify writes integer-like keys first, so their order may change.
      if (first >= ZERO && first <= NINE) this.#canonical = false;
      let isConstructor: boolean;
      if (this.#escaped) {
        const key = JSON.parse(this.#text(keyStart, keyEnd)) as string;
        if (key === '__proto__' || (constructorValue && key === 'prototype')) throw REFUSED;
        isConstructor = key === 'constructor';
      } else {
        if (this.#rawKeyIs(keyStart, keyEnd, '__proto__')) throw REFUSED;
        if (constructorValue && this.#rawKeyIs(keyStart, keyEnd, 'prototype')) throw REFUSED;
        isConstructor = this.#rawKeyIs(keyStart, keyEnd, 'constructor');
      }
      if (this.#canonical && this.#keyCount - base >= 2 * MAX_CHECKED_KEYS) {
        // Each key is compared with the ones before it: past this many, the value is taken as not
        // compact (parsed and serialised again, in linear time) instead of comparing on.
        this.#canonical = false;
      }
      if (this.#canonical) {
        // A repeated key keeps its first place and its last value in JSON.parse's result.
        const top = this.#keyCount;
        for (let k = base; k < top; k += 2) {
          if (this.#sameBytes(keys[k] as number, keys[k + 1] as number, keyStart, keyEnd)) {
            this.#canonical = false;
            break;
          }
        }
        keys[top] = keyStart;
        keys[top + 1] = keyEnd;
        this.#keyCount = top + 2;
      }
      this.#ws();
      if (this.#at(this.#i) !== COLON) throw REFUSED;
      this.#i++;
      this.#ws();
      this.#value(depth + 1, isConstructor);
      this.#ws();
      const next = this.#at(this.#i);
      this.#i++;
      if (next === CLOSE_BRACE) break;
      if (next !== COMMA) throw REFUSED;
      this.#ws();
    }
    this.#keyCount = base;
  }

  /**
   * Whether two keys are written with the same bytes. Canonical keys hold no `\u` escape and each
   * character has one UTF-8 encoding, so equal keys are equal bytes.
   */
  #sameBytes(start: number, end: number, otherStart: number, otherEnd: number): boolean {
    if (end - start !== otherEnd - otherStart) return false;
    const b = this.#b;
    for (let k = 0; k < end - start; k++) if (b[start + k] !== b[otherStart + k]) return false;
    return true;
  }

  /**
   * The unescaped key that starts at `keyStart` (its quote; #i is past its closing quote). The keys
   * of the API's bodies are returned as the interned literals, which property stores look up
   * faster than fresh strings.
   */
  #knownKey(keyStart: number): string {
    const end = this.#i;
    for (const name of ENVELOPE_KEYS) if (this.#rawKeyIs(keyStart, end, name)) return name;
    return this.#text(keyStart + 1, end - 1);
  }

  #skipArray(depth: number): void {
    if (depth > MAX_JSON_DEPTH) throw REFUSED;
    this.#i++;
    this.#ws();
    if (this.#at(this.#i) === CLOSE_BRACKET) {
      this.#i++;
      return;
    }
    for (;;) {
      this.#value(depth + 1, false);
      this.#ws();
      const next = this.#at(this.#i);
      this.#i++;
      if (next === CLOSE_BRACKET) return;
      if (next !== COMMA) throw REFUSED;
      this.#ws();
    }
  }

  /** Whether the key from `keyStart` to `keyEnd` (quotes included) is the ASCII `name`. */
  #rawKeyIs(keyStart: number, keyEnd: number, name: string): boolean {
    return keyEnd - keyStart === name.length + 2 && this.#word(keyStart + 1, name);
  }

  /** Whether the body holds the ASCII `word` at `at`. */
  #word(at: number, word: string): boolean {
    if (at + word.length > this.#n) return false;
    const b = this.#b;
    for (let k = 0; k < word.length; k++) if (b[at + k] !== word.charCodeAt(k)) return false;
    return true;
  }

  /** Skips a string at the opening quote; sets #escaped when it holds an escape. */
  #string(): void {
    const b = this.#b;
    const length = this.#n;
    let i = this.#i + 1;
    let escaped = false;
    for (;;) {
      if (i >= length) throw REFUSED;
      const c = b[i] as number;
      if (c === QUOTE) break;
      if (c < 0x20) throw REFUSED;
      if (c === BACKSLASH) {
        escaped = true;
        const e = this.#at(i + 1);
        if (isCompactEscape(e)) {
          i += 2;
        } else if (e === 0x2f) {
          this.#canonical = false;
          i += 2;
        } else if (e === 0x75) {
          for (let h = i + 2; h < i + 6; h++) if (!isHex(this.#at(h))) throw REFUSED;
          this.#canonical = false;
          i += 6;
        } else {
          throw REFUSED;
        }
      } else {
        i++;
      }
    }
    this.#i = i + 1;
    this.#escaped = escaped;
  }

  #number(): void {
    const start = this.#i;
    let i = start;
    if (this.#at(i) === MINUS) i++;
    const intStart = i;
    let c = this.#at(i);
    if (c === ZERO) i++;
    else if (c >= 0x31 && c <= NINE) {
      do i++;
      while (isDigit(this.#at(i)));
    } else throw REFUSED;
    const intDigits = i - intStart;
    let plainInteger = true;
    c = this.#at(i);
    if (c === DOT) {
      plainInteger = false;
      i++;
      if (!isDigit(this.#at(i))) throw REFUSED;
      do i++;
      while (isDigit(this.#at(i)));
      c = this.#at(i);
    }
    if (c === 0x65 || c === 0x45) {
      plainInteger = false;
      i++;
      c = this.#at(i);
      if (c === PLUS || c === MINUS) i++;
      if (!isDigit(this.#at(i))) throw REFUSED;
      do i++;
      while (isDigit(this.#at(i)));
    }
    this.#i = i;
    if (!this.#canonical) return;
    // A short integer is written back as it is, except -0 (the only one with a sign and a 0).
    if (
      plainInteger &&
      intDigits <= SAFE_INTEGER_DIGITS &&
      (intStart === start || this.#at(intStart) !== ZERO)
    ) {
      return;
    }
    // JSON.stringify writes a finite number as String(number) (and -0 as 0, which String does too).
    const text = this.#b.toString('latin1', start, i);
    if (String(Number(text)) !== text) this.#canonical = false;
  }

  /** Skips JSON whitespace; any inside a value means the value is not compact. */
  #ws(): void {
    const b = this.#b;
    const length = this.#n;
    let i = this.#i;
    while (i < length) {
      const c = b[i] as number;
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      i++;
    }
    if (i !== this.#i) {
      this.#canonical = false;
      this.#i = i;
    }
  }
}

/**
 * Parses the UTF-8 bytes of an append body or NDJSON line: the value JSON.parse gives for their
 * decoded text, with each event's `data` and `metadata` as a JsonBytes (a view of `body`, which
 * must not change while the events are in use) or a JsonText. Throws exactly what parseJsonSafely
 * throws for the decoded text, and INVALID_JSON first for bytes that are not UTF-8 (checkUtf8).
 */
export function parseEventsBody(body: Uint8Array): unknown {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  checkUtf8(bytes);
  try {
    return new Scanner(bytes).root();
  } catch (err) {
    if (err !== REFUSED) throw err;
    return parseJsonSafely(bytes.toString('utf8'));
  }
}

/**
 * Buffers over the memory of stored values that reads answer with, one per ArrayBuffer: the events
 * of one read are views of one buffer, so they share one Buffer, made once and held no longer than
 * the memory it covers.
 */
const buffersOver = new WeakMap<ArrayBufferLike, Buffer>();

function bufferOver(memory: ArrayBufferLike): Buffer {
  let buffer = buffersOver.get(memory);
  if (buffer === undefined) {
    buffer = Buffer.from(memory);
    buffersOver.set(memory, buffer);
  }
  return buffer;
}

/**
 * Whether `bytes` are the UTF-8 of one JSON value in JSON.stringify's compact form that
 * parseJsonSafely accepts: then JSON.stringify(JSON.parse(text)) is their text, and a read can
 * answer with them as they are, without parsing them. The scan is conservative as it is for
 * bodies: false means "not vouched for" (whitespace, escapes such as `\u0041`, integer-like or
 * very many keys, anything it refuses), for the caller to decide with the exact rule.
 */
export function isCompactJson(bytes: Uint8Array): boolean {
  if (bytes.byteLength === 0 || !isUtf8(bytes)) return false;
  const start = bytes.byteOffset;
  try {
    return new Scanner(bufferOver(bytes.buffer), start, start + bytes.byteLength).compactValue();
  } catch (err) {
    if (err !== REFUSED) throw err;
    return false;
  }
}
