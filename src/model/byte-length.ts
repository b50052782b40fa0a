/**
 * The length of a typed array as its internal slot holds it: what `set()`, indexing and native code
 * (zlib) use. A subclass or an own property can make `byteLength` say something else; every length
 * that sizes a record, bounds a CRC or checks a limit is read here instead, so they all agree with
 * the bytes copied. Throws a TypeError for an object that is not a typed array (one made from the
 * prototype).
 *
 * It is also faster on the put path: callers' arrays come as Uint8Array, Buffer and views of other
 * classes, which makes `.byteLength` a megamorphic load there, while this call of the built-in
 * getter is inlined (paired profile-pipeline runs: main thread −14 %, BENCHMARKS.md).
 */
export const byteLengthOf: (bytes: Uint8Array) => number = (() => {
  const typedArray = Object.getPrototypeOf(Uint8Array.prototype) as object;
  const getter = Object.getOwnPropertyDescriptor(typedArray, 'byteLength')?.get as (
    this: Uint8Array,
  ) => number;
  return (bytes: Uint8Array) => getter.call(bytes);
})();

/**
 * Whether `value` is bytes: a Uint8Array (or subclass) that is a typed array indeed, not an object
 * made from its prototype, whose byteLengthOf would throw.
 */
export function isByteArray(value: unknown): value is Uint8Array {
  if (!(value instanceof Uint8Array)) return false;
  try {
    byteLengthOf(value);
    return true;
  } catch {
    return false;
  }
}
