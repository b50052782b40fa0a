import {
  BACKSLASH,
  CLOSE_BRACE,
  CLOSE_BRACKET,
  COLON,
  COMMA,
  DOT,
  ENVELOPE_KEYS,
  isCompactEscape,
  isDigit,
  isHex,
  JsonText,
  MINUS,
  type Mode,
  NINE,
  OPEN_BRACE,
  OPEN_BRACKET,
  PLUS,
  QUOTE,
  REFUSED,
  SAFE_INTEGER_DIGITS,
  ZERO,
} from './events-scan.js';
import { MAX_JSON_DEPTH, parseJsonSafely } from './safe-json.js';

/**
 * The scan of events-body.ts over decoded text instead of UTF-8 bytes, with the same rules and
 * results, except that a canonical `data` or `metadata` is a JsonText (its source slice) rather
 * than a view of the body. It serves the bodies that are not valid UTF-8: decoding replaced their
 * bad bytes with U+FFFD, and this scan sees the text exactly as the API always has. It also reads
 * the UTF-16 that UTF-8 cannot carry: a lone surrogate is written as it is in the text but escaped
 * by JSON.stringify, so a value holding one is not canonical.
 */
class Scanner {
  readonly #s: string;
  #i = 0;
  /** Cleared when the value being scanned is not in JSON.stringify's compact form. */
  #canonical = true;
  /** Start and end offsets of the keys of the objects being scanned, for the duplicate check. */
  readonly #keys: number[] = [];
  #keyCount = 0;
  /** Whether the last string scanned contained an escape. */
  #escaped = false;

  constructor(text: string) {
    this.#s = text;
  }

  root(): unknown {
    this.#ws();
    const value = this.#member('root', 1, false);
    this.#ws();
    if (this.#i !== this.#s.length) throw REFUSED;
    return value;
  }

  /** A value at nesting `depth` (the depth it has if it is an object or array). */
  #member(mode: Mode, depth: number, constructorValue: boolean): unknown {
    const c = this.#s.charCodeAt(this.#i);
    if (c === OPEN_BRACE && mode !== 'plain') return this.#object(mode, depth);
    if (c === OPEN_BRACKET && mode === 'root') return this.#parsed(depth, false);
    const start = this.#i;
    if (c === QUOTE) {
      this.#string();
      if (!this.#escaped) return this.#s.slice(start + 1, this.#i - 1);
      return JSON.parse(this.#s.slice(start, this.#i)) as unknown;
    }
    this.#value(depth, constructorValue);
    return JSON.parse(this.#s.slice(start, this.#i)) as unknown;
  }

  /** Scans any value and returns JSON.parse of its text (containers and literals outside data). */
  #parsed(depth: number, constructorValue: boolean): unknown {
    const start = this.#i;
    this.#value(depth, constructorValue);
    return JSON.parse(this.#s.slice(start, this.#i)) as unknown;
  }

  /** The envelope object (mode 'root') or an event (mode 'event'), built as JSON.parse would. */
  #object(mode: Mode, depth: number): Record<string, unknown> {
    if (depth > MAX_JSON_DEPTH) throw REFUSED;
    const s = this.#s;
    const out: Record<string, unknown> = {};
    this.#i++;
    this.#ws();
    if (s.charCodeAt(this.#i) === CLOSE_BRACE) {
      this.#i++;
      return out;
    }
    for (;;) {
      if (s.charCodeAt(this.#i) !== QUOTE) throw REFUSED;
      const keyStart = this.#i;
      this.#string();
      const key = this.#escaped
        ? (JSON.parse(s.slice(keyStart, this.#i)) as string)
        : this.#knownKey(keyStart);
      if (key === '__proto__') throw REFUSED;
      this.#ws();
      if (s.charCodeAt(this.#i) !== COLON) throw REFUSED;
      this.#i++;
      this.#ws();
      const c = s.charCodeAt(this.#i);
      if (mode === 'root' && key === 'events' && c === OPEN_BRACKET) {
        out[key] = this.#events(depth + 1);
      } else if (mode === 'event' && (key === 'data' || key === 'metadata')) {
        const start = this.#i;
        this.#canonical = true;
        this.#value(depth + 1, false);
        out[key] = new JsonText(s.slice(start, this.#i), this.#canonical);
      } else {
        out[key] = this.#member('plain', depth + 1, key === 'constructor');
      }
      this.#ws();
      const next = s.charCodeAt(this.#i);
      this.#i++;
      if (next === CLOSE_BRACE) return out;
      if (next !== COMMA) throw REFUSED;
      this.#ws();
    }
  }

  #events(depth: number): unknown[] {
    if (depth > MAX_JSON_DEPTH) throw REFUSED;
    const s = this.#s;
    const out: unknown[] = [];
    this.#i++;
    this.#ws();
    if (s.charCodeAt(this.#i) === CLOSE_BRACKET) {
      this.#i++;
      return out;
    }
    for (;;) {
      out.push(this.#member('event', depth + 1, false));
      this.#ws();
      const next = s.charCodeAt(this.#i);
      this.#i++;
      if (next === CLOSE_BRACKET) return out;
      if (next !== COMMA) throw REFUSED;
      this.#ws();
    }
  }

  /** Skips one value, checking it as parseJsonSafely would and noting whether it is compact. */
  #value(depth: number, constructorValue: boolean): void {
    const s = this.#s;
    const c = s.charCodeAt(this.#i);
    if (c === OPEN_BRACE) this.#skipObject(depth, constructorValue);
    else if (c === OPEN_BRACKET) this.#skipArray(depth);
    else if (c === QUOTE) this.#string();
    else if (c === MINUS || (c >= ZERO && c <= NINE)) this.#number();
    else if (s.startsWith('true', this.#i)) this.#i += 4;
    else if (s.startsWith('false', this.#i)) this.#i += 5;
    else if (s.startsWith('null', this.#i)) this.#i += 4;
    else throw REFUSED;
  }

  #skipObject(depth: number, constructorValue: boolean): void {
    if (depth > MAX_JSON_DEPTH) throw REFUSED;
    const s = this.#s;
    const keys = this.#keys;
    const base = this.#keyCount;
    this.#i++;
    this.#ws();
    if (s.charCodeAt(this.#i) === CLOSE_BRACE) {
      this.#i++;
      return;
    }
    for (;;) {
      if (s.charCodeAt(this.#i) !== QUOTE) throw REFUSED;
      const keyStart = this.#i;
      this.#string();
      const keyEnd = this.#i;
      const first = s.charCodeAt(keyStart + 1);
      // JSON.stringify writes integer-like keys first, so their order may change.
      if (first >= ZERO && first <= NINE) this.#canonical = false;
      let isConstructor: boolean;
      if (this.#escaped) {
        const key = JSON.parse(s.slice(keyStart, keyEnd)) as string;
        if (key === '__proto__' || (constructorValue && key === 'prototype')) throw REFUSED;
        isConstructor = key === 'constructor';
      } else {
        if (this.#rawKeyIs(keyStart, keyEnd, '__proto__')) throw REFUSED;
        if (constructorValue && this.#rawKeyIs(keyStart, keyEnd, 'prototype')) throw REFUSED;
        isConstructor = this.#rawKeyIs(keyStart, keyEnd, 'constructor');
      }
      if (this.#canonical) {
        // A repeated key keeps its first place and its last value in JSON.parse's result.
        const top = this.#keyCount;
        for (let k = base; k < top; k += 2) {
          if (this.#sameText(keys[k] as number, keys[k + 1] as number, keyStart, keyEnd)) {
            this.#canonical = false;
            break;
          }
        }
        keys[top] = keyStart;
        keys[top + 1] = keyEnd;
        this.#keyCount = top + 2;
      }
      this.#ws();
      if (s.charCodeAt(this.#i) !== COLON) throw REFUSED;
      this.#i++;
      this.#ws();
      this.#value(depth + 1, isConstructor);
      this.#ws();
      const next = s.charCodeAt(this.#i);
      this.#i++;
      if (next === CLOSE_BRACE) break;
      if (next !== COMMA) throw REFUSED;
      this.#ws();
    }
    this.#keyCount = base;
  }

  #sameText(start: number, end: number, otherStart: number, otherEnd: number): boolean {
    if (end - start !== otherEnd - otherStart) return false;
    const s = this.#s;
    for (let k = 0; k < end - start; k++)
      if (s.charCodeAt(start + k) !== s.charCodeAt(otherStart + k)) return false;
    return true;
  }

  /**
   * The unescaped key that starts at `keyStart` (its quote; #i is past its closing quote). The keys
   * of the API's bodies are returned as the interned literals, which property stores look up
   * faster than fresh slices.
   */
  #knownKey(keyStart: number): string {
    const end = this.#i;
    for (const name of ENVELOPE_KEYS) if (this.#rawKeyIs(keyStart, end, name)) return name;
    return this.#s.slice(keyStart + 1, end - 1);
  }

  #skipArray(depth: number): void {
    if (depth > MAX_JSON_DEPTH) throw REFUSED;
    const s = this.#s;
    this.#i++;
    this.#ws();
    if (s.charCodeAt(this.#i) === CLOSE_BRACKET) {
      this.#i++;
      return;
    }
    for (;;) {
      this.#value(depth + 1, false);
      this.#ws();
      const next = s.charCodeAt(this.#i);
      this.#i++;
      if (next === CLOSE_BRACKET) return;
      if (next !== COMMA) throw REFUSED;
      this.#ws();
    }
  }

  #rawKeyIs(keyStart: number, keyEnd: number, name: string): boolean {
    return keyEnd - keyStart === name.length + 2 && this.#s.startsWith(name, keyStart + 1);
  }

  /** Skips a string at the opening quote; sets #escaped when it holds an escape. */
  #string(): void {
    const s = this.#s;
    const length = s.length;
    let i = this.#i + 1;
    let escaped = false;
    for (;;) {
      if (i >= length) throw REFUSED;
      const c = s.charCodeAt(i);
      if (c === QUOTE) break;
      if (c < 0x20) throw REFUSED;
      if (c === BACKSLASH) {
        escaped = true;
        const e = s.charCodeAt(i + 1);
        if (isCompactEscape(e)) {
          i += 2;
        } else if (e === 0x2f) {
          this.#canonical = false;
          i += 2;
        } else if (e === 0x75) {
          for (let h = i + 2; h < i + 6; h++) if (!isHex(s.charCodeAt(h))) throw REFUSED;
          this.#canonical = false;
          i += 6;
        } else {
          throw REFUSED;
        }
      } else if (c >= 0xd800 && c <= 0xdfff) {
        // A surrogate pair is written as it is; a lone surrogate is escaped by JSON.stringify.
        const low = s.charCodeAt(i + 1);
        if (c <= 0xdbff && low >= 0xdc00 && low <= 0xdfff) i += 2;
        else {
          this.#canonical = false;
          i++;
        }
      } else {
        i++;
      }
    }
    this.#i = i + 1;
    this.#escaped = escaped;
  }

  #number(): void {
    const s = this.#s;
    const start = this.#i;
    let i = start;
    if (s.charCodeAt(i) === MINUS) i++;
    const intStart = i;
    let c = s.charCodeAt(i);
    if (c === ZERO) i++;
    else if (c >= 0x31 && c <= NINE) {
      do i++;
      while (isDigit(s.charCodeAt(i)));
    } else throw REFUSED;
    const intDigits = i - intStart;
    let plainInteger = true;
    c = s.charCodeAt(i);
    if (c === DOT) {
      plainInteger = false;
      i++;
      if (!isDigit(s.charCodeAt(i))) throw REFUSED;
      do i++;
      while (isDigit(s.charCodeAt(i)));
      c = s.charCodeAt(i);
    }
    if (c === 0x65 || c === 0x45) {
      plainInteger = false;
      i++;
      c = s.charCodeAt(i);
      if (c === PLUS || c === MINUS) i++;
      if (!isDigit(s.charCodeAt(i))) throw REFUSED;
      do i++;
      while (isDigit(s.charCodeAt(i)));
    }
    this.#i = i;
    if (!this.#canonical) return;
    // A short integer is written back as it is, except -0 (the only one with a sign and a 0).
    if (
      plainInteger &&
      intDigits <= SAFE_INTEGER_DIGITS &&
      (intStart === start || s.charCodeAt(intStart) !== ZERO)
    ) {
      return;
    }
    // JSON.stringify writes a finite number as String(number) (and -0 as 0, which String does too).
    const text = s.slice(start, i);
    if (String(Number(text)) !== text) this.#canonical = false;
  }

  /** Skips JSON whitespace; any inside a value means the value is not compact. */
  #ws(): void {
    const s = this.#s;
    let i = this.#i;
    for (;;) {
      const c = s.charCodeAt(i);
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
 * Parses the text of an append body or NDJSON line: the value JSON.parse gives, with each event's
 * `data` and `metadata` as a JsonText. Throws exactly what parseJsonSafely throws for the same text.
 */
export function parseEventsText(text: string): unknown {
  try {
    return new Scanner(text).root();
  } catch (err) {
    if (err !== REFUSED) throw err;
    return parseJsonSafely(text);
  }
}
