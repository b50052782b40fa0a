import { type ErrorCode, RingStoreError } from '../errors.js';

/**
 * The one check that an options object names only options the API knows (its own keys), so that a
 * misspelt option (`expectedversion`, `fromversion`) is an error with `code` naming it, never a
 * check or a filter silently skipped. Anything but a plain object is refused with `code` too. HTTP
 * bodies and queries are checked the same way (wire.ts).
 */
export function rejectUnknownOptions(
  options: unknown,
  known: ReadonlySet<string>,
  code: ErrorCode,
  what: string,
): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new RingStoreError(code, `${what}s must be an object`);
  }
  for (const key of Object.keys(options)) {
    if (!known.has(key)) {
      const option = key.slice(0, 40);
      throw new RingStoreError(code, `unknown ${what} ${JSON.stringify(option)}`, { option });
    }
  }
}
