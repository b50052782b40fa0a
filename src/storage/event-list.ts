import type { AppendEvent, EventList } from './types.js';

/**
 * The events of an AppendBatch as an EventList, whichever form the caller gave: an EventList as it
 * is, an array behind a thin adapter (one object per batch).
 */
export function eventListOf(events: readonly AppendEvent[] | EventList): EventList {
  return isEventArray(events) ? new ArrayEventList(events) : events;
}

function isEventArray(events: readonly AppendEvent[] | EventList): events is readonly AppendEvent[] {
  return Array.isArray(events);
}

class ArrayEventList implements EventList {
  readonly #events: readonly AppendEvent[];

  constructor(events: readonly AppendEvent[]) {
    this.#events = events;
  }

  get length(): number {
    return this.#events.length;
  }

  type(index: number): string {
    return this.#events[index]!.type;
  }

  dataBytes(index: number): number {
    return this.#events[index]!.data.byteLength;
  }

  metadataBytes(index: number): number {
    return this.#events[index]!.metadata.byteLength;
  }

  crc(index: number): number {
    return this.#events[index]!.crc;
  }

  copyPayloads(target: Uint8Array, at: number): number {
    let to = at;
    for (const event of this.#events) {
      target.set(event.data, to);
      to += event.data.byteLength;
      if (event.metadata.byteLength > 0) {
        target.set(event.metadata, to);
        to += event.metadata.byteLength;
      }
    }
    return to - at;
  }
}
