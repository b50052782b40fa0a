/**
 * Decodes short strings from bytes without allocating when they repeat (names, event types): a
 * small open-addressing cache keyed by an FNV-1a hash of the bytes and confirmed by comparing them.
 * A repeated name comes back as the same string object, so later Map and Set lookups find its hash
 * already computed and compare it by identity. Each decoding thread (or scanner) keeps one.
 *
 * `decode` turns the bytes of a miss into the string: Latin-1 by default (the ring's names, which
 * are ASCII by validation); the HTTP body scanner passes a UTF-8 decoder.
 */
export class NameCache {
  readonly #slots: ({ bytes: Uint8Array; text: string } | undefined)[] = new Array(SLOTS);
  readonly #decode: (bytes: Uint8Array) => string;

  constructor(decode: (bytes: Uint8Array) => string = latin1) {
    this.#decode = decode;
  }

  decode(bytes: Uint8Array, start: number, length: number): string {
    let hash = 0x811c9dc5;
    for (let i = 0; i < length; i++) hash = Math.imul(hash ^ bytes[start + i]!, 0x01000193);
    const slot = (hash >>> 0) & (SLOTS - 1);
    const hit = this.#slots[slot];
    if (hit && hit.bytes.byteLength === length) {
      let same = true;
      for (let i = 0; i < length; i++) {
        if (hit.bytes[i] !== bytes[start + i]) {
          same = false;
          break;
        }
      }
      if (same) return hit.text;
    }
    // A copy, never a view: a Buffer's slice() is a view, and the cache outlives the bytes it saw.
    const copy = new Uint8Array(length);
    for (let i = 0; i < length; i++) copy[i] = bytes[start + i]!;
    const text = this.#decode(copy);
    this.#slots[slot] = { bytes: copy, text };
    return text;
  }
}

const SLOTS = 1024;

function latin1(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes);
}
