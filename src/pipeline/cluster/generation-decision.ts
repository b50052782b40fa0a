import { RingStoreError, versionConflict } from '../../errors.js';
import { expectedVersionMatches } from '../../model/events.js';
import { eventListOf } from '../../storage/event-list.js';
import type { AppendBatch, GenerationApplier } from '../../storage/types.js';
import type { PutResult } from '../../types.js';

/**
 * What a domain's owner does with one batch before its next generation message (docs/CLUSTER.md,
 * "How a put travels", step 2), deciding against its own store, which holds the whole stream:
 *
 *   take     it goes into the message, naming the exact version it extends, whatever form the
 *            client gave: a replica applying it twice refuses the second copy as a conflict
 *   replay   its idempotency key was seen before on the instance: the original result, unpublished
 *   refuse   the expected version does not hold (VERSION_CONFLICT), or the batch cannot fit in one
 *            message (MESSAGE_TOO_LARGE): answered now, unpublished
 *   later    not in this message: the message is full, or a batch taken before it (in this message
 *            or one still in flight) carries the same idempotency key (decided again once that
 *            message is applied, it then replays)
 */
export type BatchDecision =
  | { kind: 'take'; batch: AppendBatch }
  | { kind: 'replay'; result: PutResult }
  | { kind: 'refuse'; error: RingStoreError }
  | { kind: 'later' };

/** Room a message needs besides its batches' bytes (header fields, JSON framing). */
const HEADER_ALLOWANCE = 1024;
const PER_BATCH_ALLOWANCE = 256;

/**
 * Decides the batches of one domain, in order, for the next message; at most `maxMessageBytes` of
 * them are taken. Versions count the batches taken earlier in the same message (and `state` those
 * of messages in flight); `keysInFlight` holds the keys (keyOf) of batches in messages not applied
 * yet.
 */
export function decideGeneration(
  state: Pick<GenerationApplier, 'version' | 'keyedResult'>,
  domain: string,
  batches: readonly AppendBatch[],
  maxMessageBytes: number,
  keysInFlight: ReadonlySet<string> = new Set(),
): BatchDecision[] {
  const decisions: BatchDecision[] = new Array(batches.length);
  const versions = new Map<string, number>();
  const keys = new Set<string>(keysInFlight);
  let bytes = HEADER_ALLOWANCE;
  let full = false;
  for (let i = 0; i < batches.length; i++) {
    const batch = batches[i]!;
    const size = batchBytes(batch);
    if (HEADER_ALLOWANCE + size > maxMessageBytes) {
      decisions[i] = {
        kind: 'refuse',
        error: new RingStoreError(
          'MESSAGE_TOO_LARGE',
          `a batch of ${size} bytes does not fit in one NATS message (at most ${maxMessageBytes}); raise the server's max_payload`,
          { bytes: size, maxPayload: maxMessageBytes },
        ),
      };
      continue;
    }
    // Once one batch did not fit, the rest wait too: a domain's puts keep their order.
    if (full || bytes + size > maxMessageBytes) {
      full = true;
      decisions[i] = { kind: 'later' };
      continue;
    }
    decisions[i] = decideOne(state, domain, batch, versions, keys);
    if (decisions[i]!.kind === 'take') bytes += size;
  }
  return decisions;
}

function decideOne(
  state: Pick<GenerationApplier, 'version' | 'keyedResult'>,
  domain: string,
  batch: AppendBatch,
  versions: Map<string, number>,
  keys: Set<string>,
): BatchDecision {
  const instance = instanceOf(batch);
  try {
    if (batch.idempotencyKey !== undefined) {
      if (keys.has(keyOf(batch)!)) return { kind: 'later' };
      const original = state.keyedResult(
        domain,
        batch.aggregateType,
        batch.aggregateId,
        batch.idempotencyKey,
      );
      if (original) return { kind: 'replay', result: { ...original, replayed: true } };
    }
    const version = versions.get(instance) ?? state.version(domain, batch.aggregateType, batch.aggregateId);
    if (!expectedVersionMatches(batch.expectedVersion, version)) {
      return { kind: 'refuse', error: versionConflict(version, batch.expectedVersion) };
    }
    versions.set(instance, version + eventListOf(batch.events).length);
    if (batch.idempotencyKey !== undefined) keys.add(keyOf(batch)!);
    return { kind: 'take', batch: { ...batch, expectedVersion: version } };
  } catch (err) {
    return {
      kind: 'refuse',
      error:
        err instanceof RingStoreError
          ? err
          : new RingStoreError('INTERNAL', err instanceof Error ? err.message : String(err)),
    };
  }
}

/** A batch's instance, as the decision's maps name it. */
export function instanceOf(batch: AppendBatch): string {
  return `${batch.aggregateType}\u0000${batch.aggregateId}`;
}

/** A batch's idempotency key on its instance, as the decision's sets name it (undefined without one). */
export function keyOf(batch: AppendBatch): string | undefined {
  return batch.idempotencyKey === undefined ? undefined : `${instanceOf(batch)}\u0000${batch.idempotencyKey}`;
}

/** An upper bound of a batch's bytes in a message (its events' bytes and header fields). */
function batchBytes(batch: AppendBatch): number {
  let bytes = PER_BATCH_ALLOWANCE + batch.aggregateType.length + (batch.idempotencyKey?.length ?? 0) * 3;
  const events = eventListOf(batch.events);
  for (let i = 0; i < events.length; i++) {
    bytes += events.dataBytes(i) + events.metadataBytes(i) + events.type(i).length + 40;
  }
  return bytes;
}
