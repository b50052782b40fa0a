import { isUtf8 } from 'node:buffer';
import { RingStoreError } from '../../errors.js';

/** Deepest nesting of arrays/objects accepted in any JSON body or NDJSON line. */
export const MAX_JSON_DEPTH = 64;

/**
 * Refuses bytes that are not UTF-8 (INVALID_JSON): JSON exchanged between systems is UTF-8
 * (RFC 8259), and decoding anything else would turn each bad sequence into U+FFFD, so the store
 * would keep other bytes than the client sent. Checked natively, before any scan or decode.
 */
export function checkUtf8(bytes: Uint8Array): void {
  if (!isUtf8(bytes)) {
    throw new RingStoreError('INVALID_JSON', 'the JSON text is not valid UTF-8 (RFC 8259 requires UTF-8)');
  }
}

/** The text of a JSON body's bytes, which must be UTF-8 (checkUtf8). */
export function utf8Text(bytes: Buffer): string {
  checkUtf8(bytes);
  return bytes.toString('utf8');
}

/**
 * JSON.parse plus the two checks a public endpoint needs that JSON.parse does not do:
 *
 * - prototype poisoning: an own `__proto__` key, or a `constructor` key holding an object with a
 *   `prototype` key, is rejected, so no later spread or merge of the value can reach a prototype;
 * - nesting depth: more than MAX_JSON_DEPTH levels is rejected, so no later recursive walk
 *   (JSON.stringify of event data, a logger, a client) can overflow the stack.
 *
 * The walk stops at MAX_JSON_DEPTH, so the check itself cannot overflow the stack either.
 */
export function parseJsonSafely(text: string, maxDepth: number = MAX_JSON_DEPTH): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new RingStoreError('INVALID_JSON');
  }
  assertSafeJsonValue(value, maxDepth);
  return value;
}

export function assertSafeJsonValue(root: unknown, maxDepth: number = MAX_JSON_DEPTH): void {
  if (typeof root === 'object' && root !== null) checkNode(root, 1, maxDepth);
}

/**
 * Recursive, but never deeper than maxDepth + 1 frames: the depth is checked before descending, so
 * hostile nesting is refused after maxDepth levels, long before the stack could be at risk.
 */
function checkNode(node: object, depth: number, maxDepth: number): void {
  if (depth > maxDepth) {
    throw new RingStoreError('INVALID_JSON', `JSON is nested deeper than ${maxDepth} levels`);
  }
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) {
      const item: unknown = node[i];
      if (typeof item === 'object' && item !== null) checkNode(item, depth + 1, maxDepth);
    }
    return;
  }
  for (const key in node) {
    const item = (node as Record<string, unknown>)[key];
    if (key === '__proto__') {
      throw new RingStoreError('INVALID_JSON', 'JSON keys named __proto__ are not accepted');
    }
    if (typeof item === 'object' && item !== null) {
      if (key === 'constructor' && Object.hasOwn(item, 'prototype')) {
        throw new RingStoreError('INVALID_JSON', 'JSON keys named constructor.prototype are not accepted');
      }
      checkNode(item, depth + 1, maxDepth);
    }
  }
}
