/**
 * A bounded cache of whole index records by file offset: the bytes of each record exactly, kept
 * after their CRC was checked, least recently used evicted past `capacityBytes`. An instance read
 * needs one record per batch, scattered over the index; caching the records rather than the
 * blocks around them keeps ~20× more of them in the same memory.
 */
/** What a cached record costs besides its bytes (its Map entry and array object), counted in the bound. */
const ENTRY_OVERHEAD_BYTES = 160;
/** Keys are fileKey × 2^40 + offset, exact in a double: files below 8192 and offsets below 1 TiB are cached. */
const OFFSET_LIMIT = 2 ** 40;
const FILE_LIMIT = 2 ** 13;

export class RecordCache {
  readonly #capacityBytes: number;
  readonly #records = new Map<number, Uint8Array>();
  #bytes = 0;
  #hits = 0;
  #misses = 0;

  constructor(capacityBytes: number) {
    this.#capacityBytes = capacityBytes;
  }

  #nextFileKey = 0;

  /** A key for one index file's records (files past the 8192nd of a reader are not cached). */
  newFileKey(): number {
    return this.#nextFileKey++;
  }

  /** The record at an offset of a file, or undefined (counted as a miss). */
  get(fileKey: number, offset: number): Uint8Array | undefined {
    const record = this.#records.get(keyOf(fileKey, offset));
    if (record === undefined) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    const key = keyOf(fileKey, offset);
    this.#records.delete(key);
    this.#records.set(key, record);
    return record;
  }

  /** Keeps a checked record (its exact bytes, not shared with any buffer that changes). */
  set(fileKey: number, offset: number, record: Uint8Array): void {
    const key = keyOf(fileKey, offset);
    if (Number.isNaN(key) || record.byteLength + ENTRY_OVERHEAD_BYTES > this.#capacityBytes) return;
    const old = this.#records.get(key);
    if (old) this.#bytes -= old.byteLength + ENTRY_OVERHEAD_BYTES;
    this.#records.delete(key);
    this.#records.set(key, record);
    this.#bytes += record.byteLength + ENTRY_OVERHEAD_BYTES;
    for (const [key, value] of this.#records) {
      if (this.#bytes <= this.#capacityBytes) break;
      this.#records.delete(key);
      this.#bytes -= value.byteLength + ENTRY_OVERHEAD_BYTES;
    }
  }

  clear(): void {
    this.#records.clear();
    this.#bytes = 0;
  }

  stats(): { capacityBytes: number; bytes: number; hits: number; misses: number } {
    return { capacityBytes: this.#capacityBytes, bytes: this.#bytes, hits: this.#hits, misses: this.#misses };
  }
}

/** The Map key of a record; NaN (never found, never stored) past the limits. */
function keyOf(fileKey: number, offset: number): number {
  return fileKey < FILE_LIMIT && offset < OFFSET_LIMIT ? fileKey * OFFSET_LIMIT + offset : Number.NaN;
}
