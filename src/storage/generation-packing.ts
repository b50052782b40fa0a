import { DEFAULT_GENERATION_BYTES } from '../model/limits.js';

/**
 * Cuts an ordered run of accepted batches into generations (DESIGN.md §2 rule 4).
 *
 * The size that counts is a batch's *encoded size*: the bytes it adds to disk, i.e. its index
 * record (80 bytes + idempotency key + 12 bytes per event) plus its payload bytes in the data
 * segment (docs/FORMAT.md). Generations are cut greedily at batch boundaries, in order, so that each
 * holds at most `generationBytes` of encoded size; a batch that alone exceeds the limit forms a
 * generation by itself. A batch is never split.
 *
 * Returns the exclusive end index of each generation, ascending; the last equals `count`. Pure and
 * allocation-light: pass `out` to reuse an array on a hot path.
 */
export function packGenerations(
  encodedSizes: ArrayLike<number>,
  generationBytes: number = DEFAULT_GENERATION_BYTES,
  count: number = encodedSizes.length,
  out: number[] = [],
): number[] {
  if (!(Number.isSafeInteger(generationBytes) && generationBytes > 0)) {
    throw new RangeError(`generationBytes must be a positive integer, got ${generationBytes}`);
  }
  out.length = 0;
  let start = 0;
  let filled = 0;
  for (let i = 0; i < count; i++) {
    const size = encodedSizes[i]!;
    if (i > start && filled + size > generationBytes) {
      out.push(i);
      start = i;
      filled = 0;
    }
    filled += size;
  }
  if (count > 0) out.push(count);
  return out;
}
