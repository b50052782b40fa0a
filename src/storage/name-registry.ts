import { LIMITS } from '../model/limits.js';
import { EVENT_TYPE_PATTERN, STORAGE_NAME_PATTERN } from '../model/names.js';
import { KIND_AGGREGATE_TYPE, KIND_EVENT_TYPE, type NameKindCode } from './format.js';
import type { RegistryRecord } from './registry-record.js';

/**
 * The in-memory form of one domain's registry file: event-type and aggregate-type names and their
 * u16 codes. Codes of each kind are dense, starting at 0, in registration order.
 */
export class NameRegistry {
  readonly eventTypes: string[] = [];
  readonly aggregateTypes: string[] = [];
  readonly #eventCodes = new Map<string, number>();
  readonly #aggregateCodes = new Map<string, number>();

  /** Registry records so far (the sequence number the next record must carry). */
  get records(): number {
    return this.eventTypes.length + this.aggregateTypes.length;
  }

  eventCode(name: string): number {
    return this.#eventCodes.get(name) ?? -1;
  }

  aggregateCode(name: string): number {
    return this.#aggregateCodes.get(name) ?? -1;
  }

  /** Room for `count` more names of a kind. */
  hasRoom(kind: NameKindCode, count: number): boolean {
    const used = kind === KIND_EVENT_TYPE ? this.eventTypes.length : this.aggregateTypes.length;
    return used + count <= LIMITS.maxRegisteredNames;
  }

  /** Adds a name and returns its code; the caller has checked the name and hasRoom. */
  add(kind: NameKindCode, name: string): number {
    if (kind === KIND_EVENT_TYPE) {
      const code = this.eventTypes.push(name) - 1;
      this.#eventCodes.set(name, code);
      return code;
    }
    const code = this.aggregateTypes.push(name) - 1;
    this.#aggregateCodes.set(name, code);
    return code;
  }

  /**
   * Applies a decoded record if it is the next one in sequence and consistent; returns false when
   * it is not (a stale, duplicated or damaged record).
   */
  accept(record: RegistryRecord): boolean {
    if (record.sequence !== this.records) return false;
    if (record.kind === KIND_EVENT_TYPE) {
      if (record.code !== this.eventTypes.length || !EVENT_TYPE_PATTERN.test(record.name)) return false;
      if (this.#eventCodes.has(record.name)) return false;
    } else if (record.kind === KIND_AGGREGATE_TYPE) {
      if (record.code !== this.aggregateTypes.length || !STORAGE_NAME_PATTERN.test(record.name)) return false;
      if (this.#aggregateCodes.has(record.name)) return false;
    }
    if (!this.hasRoom(record.kind, 1)) return false;
    this.add(record.kind, record.name);
    return true;
  }
}
