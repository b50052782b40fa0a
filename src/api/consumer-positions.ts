import { hasCode, RingStoreError } from '../errors.js';
import { validateConsumerName, validateDomain } from '../model/names.js';
import { validatePosition } from '../model/queries.js';
import type { EventInput, StoredEvent } from '../types.js';
import type { EventStore } from './event-store.js';

/**
 * Where durable consumers keep their positions: in the store itself, as events, so they are as
 * durable as the events they point into, survive a restart, and are the same for every process
 * and for the HTTP API.
 *
 * Layout: the reserved domain `ringstore-consumers`; one instance per consumer name, the aggregate
 * type being the name (it passes the same name rule) and the id 1. Each stored position is one
 * `PositionStored` event, data `{"domain":"billing","nextPosition":42}` as JSON text. The position
 * in force is the instance's last event; the instance's version counts the positions stored.
 *
 * Storing appends with `expectedVersion` = the version the consumer last saw, so two consumers
 * running under one name cannot both move it: the second gets CONSUMER_CONFLICT. A name is bound
 * to the domain of its first stored position; loading it for another domain is CONSUMER_CONFLICT.
 *
 * Loading reads two things whatever the history's length: the instance's version (a read of no
 * events), then the one event at that version. Both are forward reads, so this works over every
 * store, including those that read forward only.
 */

export const CONSUMER_POSITIONS_DOMAIN = 'ringstore-consumers';
export const CONSUMER_POSITION_ID = 1n;
export const POSITION_STORED = 'PositionStored';

export interface ConsumerPosition {
  /** Where the consumer resumes: the position after the last event it handled (0: none stored). */
  nextPosition: number;
  /** How many positions were stored under this name: the expectedVersion of the next one. */
  version: number;
}

/** Loads and stores consumer positions: in the store (below), or through the HTTP API (client). */
export interface ConsumerPositions {
  load(name: string, domain: string): Promise<ConsumerPosition>;
  /** Stores `nextPosition` if the name is still at `expectedVersion`, else CONSUMER_CONFLICT. */
  store(
    name: string,
    domain: string,
    nextPosition: number,
    expectedVersion: number,
  ): Promise<ConsumerPosition>;
}

const decoder = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

/** The domain a consumer follows: any valid domain but the positions domain itself. */
export function validateFollowedDomain(domain: unknown): string {
  const valid = validateDomain(domain);
  if (valid === CONSUMER_POSITIONS_DOMAIN) {
    throw new RingStoreError('INVALID_OPTION', `a consumer cannot follow ${CONSUMER_POSITIONS_DOMAIN}`, {
      option: 'domain',
    });
  }
  return valid;
}

/**
 * For boundaries that let clients append to any domain (HTTP): a batch for the positions domain
 * must be a stored position as store() writes it (a consumer name as aggregate type, id 1, only
 * PositionStored events whose data is a position), so that no client can leave a name whose
 * position no longer loads. Batches for other domains pass.
 */
export function checkClientAppend(
  domain: string,
  aggregateType: unknown,
  id: unknown,
  events: readonly EventInput[],
): void {
  if (domain !== CONSUMER_POSITIONS_DOMAIN) return;
  validateConsumerName(aggregateType);
  if (String(id) !== String(CONSUMER_POSITION_ID))
    refusePositionBatch(`the id must be ${CONSUMER_POSITION_ID}`);
  for (const { type, data } of events) {
    const bytes = typeof data === 'string' ? encoder.encode(data) : data;
    const position = type === POSITION_STORED ? positionIn(bytes) : undefined;
    if (position === undefined) {
      refusePositionBatch(`each event must be ${POSITION_STORED} with data {"domain","nextPosition"}`);
    }
    // A position for a domain no consumer may follow would bind the name to it for good.
    validateFollowedDomain(position.domain);
  }
}

function refusePositionBatch(why: string): never {
  throw new RingStoreError(
    'INVALID_BATCH',
    `${CONSUMER_POSITIONS_DOMAIN} holds consumer positions only, as the consumer routes store them: ${why}`,
  );
}

/** The position in the data of a PositionStored event, or undefined when it holds none. */
function positionIn(data: Uint8Array | undefined): { domain: string; nextPosition: number } | undefined {
  let parsed: unknown;
  try {
    parsed = data === undefined ? undefined : JSON.parse(decoder.decode(data));
  } catch {
    return undefined;
  }
  const record = parsed as { domain?: unknown; nextPosition?: unknown } | undefined;
  if (
    typeof record?.domain !== 'string' ||
    typeof record.nextPosition !== 'number' ||
    !Number.isSafeInteger(record.nextPosition) ||
    record.nextPosition < 0
  ) {
    return undefined;
  }
  return { domain: record.domain, nextPosition: record.nextPosition };
}

export class StoredConsumerPositions implements ConsumerPositions {
  readonly #store: EventStore;

  constructor(store: EventStore) {
    this.#store = store;
  }

  async load(name: string, domain: string): Promise<ConsumerPosition> {
    validateConsumerName(name);
    validateDomain(domain);
    const at = [CONSUMER_POSITIONS_DOMAIN, name, CONSUMER_POSITION_ID] as const;
    const { version } = await this.#store.get(...at, { limit: 0 });
    if (version === 0) return { nextPosition: 0, version: 0 };
    const { events } = await this.#store.get(...at, { fromVersion: version, toVersion: version });
    const stored = parsePosition(name, version, events[0]);
    if (stored.domain !== domain) {
      throw new RingStoreError(
        'CONSUMER_CONFLICT',
        `consumer ${name} follows domain ${stored.domain}, not ${domain}`,
        { domain: stored.domain },
      );
    }
    return { nextPosition: stored.nextPosition, version };
  }

  async store(
    name: string,
    domain: string,
    nextPosition: number,
    expectedVersion: number,
  ): Promise<ConsumerPosition> {
    validateConsumerName(name);
    validateDomain(domain);
    validatePosition('nextPosition', nextPosition);
    const data = JSON.stringify({ domain, nextPosition });
    try {
      const result = await this.#store.put(
        CONSUMER_POSITIONS_DOMAIN,
        name,
        CONSUMER_POSITION_ID,
        [{ type: POSITION_STORED, data }],
        { expectedVersion },
      );
      return { nextPosition, version: result.lastVersion };
    } catch (err) {
      if (!hasCode(err, 'VERSION_CONFLICT')) throw err;
      throw new RingStoreError(
        'CONSUMER_CONFLICT',
        `another consumer named ${name} stored a position since version ${expectedVersion}`,
        { actualVersion: (err as RingStoreError).details.actualVersion ?? null },
      );
    }
  }
}

function parsePosition(
  name: string,
  version: number,
  event: StoredEvent | undefined,
): { domain: string; nextPosition: number } {
  const position = event?.type === POSITION_STORED ? positionIn(event.data) : undefined;
  if (position === undefined) {
    throw new RingStoreError(
      'CORRUPT_DATA',
      `consumer ${name}: version ${version} of its positions is not a stored position`,
      { version },
    );
  }
  return position;
}
