import { RingStoreError, versionConflict } from '../errors.js';
import { expectedVersionMatches } from '../model/events.js';
import { LIMITS } from '../model/limits.js';
import { EVENT_TYPE_PATTERN, STORAGE_NAME_PATTERN } from '../model/names.js';
import {
  checkBatchBytes,
  checkEventBytes,
  checkEventCount,
  checkIdempotencyKey,
} from '../model/put-validator.js';
import type { PutResult } from '../types.js';
import { KIND_AGGREGATE_TYPE, KIND_EVENT_TYPE } from './format.js';
import type { InstanceState } from './instance-cache.js';
import { type DomainState, newAggregateTypeState } from './log-state.js';
import type { AppendBatch, EventList } from './types.js';

/**
 * Admission: the writer's decision on one batch, in order within an append call, so that later
 * batches see earlier ones. The checks run cheapest and most final first:
 *
 *   shape        counts and byte lengths fit their fields (batches arrive validated; this is the
 *                storage layer's own guard)
 *   idempotency  a key seen before on this instance replays the first result; nothing is appended
 *   version      the expected version holds against the instance's version
 *   names        new event and aggregate types are allowed and the registry has room; they are
 *                registered (in memory) only when the batch is admitted
 *
 * A refused batch changes nothing and costs no position.
 */
export type Admission =
  | { kind: 'refused'; error: RingStoreError }
  | { kind: 'replayed'; original: PutResult }
  /**
   * `version`: the instance's version before the batch; `storedBytes`: its payload bytes;
   * `aggregateTypeCode`: its aggregate type's code (registered now when the batch brings the name);
   * `instance`: the state looked up, unless the batch brings its aggregate type's name.
   */
  | {
      kind: 'admitted';
      version: number;
      storedBytes: number;
      aggregateTypeCode: number;
      instance: InstanceState | undefined;
    };

/**
 * The state of the batch's instance, for an aggregate type that has a code; with `withKeys` its
 * `keys` hold every keyed put of the instance.
 */
export type InstanceLookup = (aggregateTypeCode: number, withKeys: boolean) => InstanceState;

/**
 * Decides on `batch` for `domain`; on admission its event-type codes are in
 * `codes[codesStart…codesStart + events)` (the caller makes room).
 */
export function admit(
  domain: DomainState,
  batch: AppendBatch,
  events: EventList,
  codes: Uint16Array,
  codesStart: number,
  lookup: InstanceLookup,
): Admission {
  const shape = checkShape(batch, events);
  if (typeof shape !== 'number') return { kind: 'refused', error: shape };
  const existingCode = domain.registry.aggregateCode(batch.aggregateType);
  const instance = existingCode >= 0 ? lookup(existingCode, batch.idempotencyKey !== undefined) : undefined;
  if (batch.idempotencyKey !== undefined) {
    const original = instance?.keys?.get(batch.idempotencyKey);
    if (original) return { kind: 'replayed', original };
  }
  const version = instance?.version ?? 0;
  if (!expectedVersionMatches(batch.expectedVersion, version)) {
    return { kind: 'refused', error: versionConflict(version, batch.expectedVersion) };
  }
  const registered = registerNames(domain, batch, existingCode, events, codes, codesStart);
  if (typeof registered !== 'number') return { kind: 'refused', error: registered };
  return { kind: 'admitted', version, storedBytes: shape, aggregateTypeCode: registered, instance };
}

/**
 * Returns the batch's stored bytes (data and metadata), or the error that refuses it: the storage
 * layer's own guard of the format's limits, with the same checks as the boundary (put-validator.ts),
 * since a StorageWriter may be handed batches that no PutValidator has seen.
 */
function checkShape(batch: AppendBatch, events: EventList): number | RingStoreError {
  try {
    checkEventCount(events.length);
    if (batch.aggregateId < 1n || batch.aggregateId > LIMITS.maxAggregateId)
      return new RingStoreError('INVALID_ID');
    if (batch.idempotencyKey !== undefined) checkIdempotencyKey(batch.idempotencyKey);
    let stored = 0;
    for (let e = 0; e < events.length; e++) {
      const dataBytes = events.dataBytes(e);
      const metadataBytes = events.metadataBytes(e);
      checkEventBytes(dataBytes, e, 'data');
      checkEventBytes(metadataBytes, e, 'metadata');
      stored += dataBytes + metadataBytes;
    }
    checkBatchBytes(stored);
    return stored;
  } catch (error) {
    if (error instanceof RingStoreError) return error;
    throw error;
  }
}

/** The storage layer's own guard before a name nears a path. */
export function invalidName(kind: string, name: string): RingStoreError {
  return new RingStoreError('INVALID_NAME', `invalid ${kind} name ${JSON.stringify(name.slice(0, 80))}`, {
    kind,
  });
}

/**
 * Finds or registers the aggregate type (`aggregateTypeCode` is its code, or -1 when the name is
 * new) and every event type of a batch, writing the event type codes to codes[codesStart…].
 * Returns the aggregate type's code, or an error (and registers nothing) when a new name is not
 * allowed or a registry is full.
 */
function registerNames(
  domain: DomainState,
  batch: AppendBatch,
  aggregateTypeCode: number,
  events: EventList,
  codes: Uint16Array,
  codesStart: number,
): number | RingStoreError {
  const registry = domain.registry;
  let newEventTypes: string[] | undefined;
  let previousType: string | undefined;
  let previousCode = -1;
  for (let e = 0; e < events.length; e++) {
    const type = events.type(e);
    // Known types get their code now (a run of one type is looked up once); only a batch with new
    // types needs the second pass below.
    const code = type === previousType ? previousCode : registry.eventCode(type);
    previousType = type;
    previousCode = code;
    codes[codesStart + e] = code;
    if (code >= 0 || newEventTypes?.includes(type)) continue;
    if (!EVENT_TYPE_PATTERN.test(type)) return invalidName('event type', type);
    newEventTypes ??= [];
    newEventTypes.push(type);
  }
  const newAggregateType = aggregateTypeCode < 0;
  if (newAggregateType && !STORAGE_NAME_PATTERN.test(batch.aggregateType)) {
    return invalidName('aggregate type', batch.aggregateType);
  }
  if (
    (newEventTypes && !registry.hasRoom(KIND_EVENT_TYPE, newEventTypes.length)) ||
    (newAggregateType && !registry.hasRoom(KIND_AGGREGATE_TYPE, 1))
  ) {
    return new RingStoreError(
      'TOO_MANY_TYPES',
      `domain ${domain.name} cannot register more names: the registry holds 65535 of one kind`,
    );
  }
  let aggregateCode = aggregateTypeCode;
  if (newAggregateType) {
    aggregateCode = registry.add(KIND_AGGREGATE_TYPE, batch.aggregateType);
    domain.pendingNames.push({ kind: KIND_AGGREGATE_TYPE, code: aggregateCode, name: batch.aggregateType });
    domain.aggregateTypes[aggregateCode] = newAggregateTypeState(batch.aggregateType, aggregateCode);
  }
  if (newEventTypes) {
    for (const name of newEventTypes) {
      const code = registry.add(KIND_EVENT_TYPE, name);
      domain.pendingNames.push({ kind: KIND_EVENT_TYPE, code, name });
    }
    for (let e = 0; e < events.length; e++) codes[codesStart + e] = registry.eventCode(events.type(e));
  }
  return aggregateCode;
}
