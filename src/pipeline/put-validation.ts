import { EMPTY_BYTES, validateEvents } from '../model/events.js';
import { LIMITS } from '../model/limits.js';
import { EVENT_TYPE_PATTERN, validateAggregateType, validateDomain } from '../model/names.js';
import type { EventInput, ValidEvent } from '../types.js';

/** Names remembered per kind at most; past it, new names are checked every time (still correct). */
const MAX_REMEMBERED_NAMES = 1024;

/**
 * The boundary validation of a put (src/model) with a fast path for what a producer sees over and
 * over: the same few domains, aggregate types and event types, and events of a string type, a
 * Uint8Array payload and Uint8Array metadata or none. A name that passed its pattern once is
 * remembered, so the regular expressions run once per name rather than once per put and event.
 * Anything off the fast path (an unknown or invalid name, string data or metadata, a supplied CRC,
 * a limit exceeded, a malformed input) goes through the model's validators, so the results and
 * the errors are exactly theirs.
 */
export class PutValidator {
  /** Domains and aggregate types share one pattern (STORAGE_NAME_PATTERN), so one set serves both. */
  readonly #storageNames = new Set<string>();
  readonly #eventTypes = new Set<string>();

  domain(name: unknown): string {
    if (typeof name === 'string' && this.#storageNames.has(name)) return name;
    const valid = validateDomain(name);
    remember(this.#storageNames, valid);
    return valid;
  }

  aggregateType(name: unknown): string {
    if (typeof name === 'string' && this.#storageNames.has(name)) return name;
    const valid = validateAggregateType(name);
    remember(this.#storageNames, valid);
    return valid;
  }

  events(inputs: unknown): ValidEvent[] {
    if (!Array.isArray(inputs)) return validateEvents(inputs);
    const count = inputs.length;
    if (count === 0 || count > LIMITS.maxEventsPerBatch) return validateEvents(inputs);
    const events: ValidEvent[] = new Array(count);
    let total = 0;
    for (let i = 0; i < count; i++) {
      const input: unknown = inputs[i];
      if (typeof input !== 'object' || input === null || Array.isArray(input)) return validateEvents(inputs);
      const { type, data, metadata, crc } = input as EventInput;
      if (
        crc !== undefined ||
        typeof type !== 'string' ||
        !(data instanceof Uint8Array) ||
        data.byteLength > LIMITS.maxEventDataBytes ||
        !(
          metadata === undefined ||
          (metadata instanceof Uint8Array && metadata.byteLength <= LIMITS.maxEventMetadataBytes)
        )
      ) {
        return validateEvents(inputs);
      }
      if (!this.#eventTypes.has(type)) {
        if (!EVENT_TYPE_PATTERN.test(type)) return validateEvents(inputs);
        remember(this.#eventTypes, type);
      }
      const metadataBytes = metadata ?? EMPTY_BYTES;
      events[i] = { type, data, metadata: metadataBytes };
      total += data.byteLength + metadataBytes.byteLength;
    }
    if (total > LIMITS.maxBatchDataBytes) return validateEvents(inputs);
    return events;
  }
}

function remember(names: Set<string>, name: string): void {
  if (names.size < MAX_REMEMBERED_NAMES) names.add(name);
}
