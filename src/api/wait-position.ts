import { RingStoreError } from '../errors.js';
import type { EventStore } from './event-store.js';
import { logEnd } from './log-end.js';

/** A store whose node may be behind the log (a cluster node): it can wait until it has caught up. */
export interface PositionWaiter {
  waitForPosition(domain: string, position: number, timeoutMs?: number): Promise<void>;
}

/** How long a read with `waitForPosition` waits at most (HTTP). */
export const WAIT_FOR_POSITION_MS = 10_000;

/**
 * Read-your-writes on any node: resolves once `store` holds `position` of `domain`. A cluster node
 * waits until it has applied it; a single store already holds everything acknowledged, so a
 * position past its log's end fails at once. Fails with APPLY_TIMEOUT.
 */
export async function waitForPosition(
  store: EventStore,
  domain: string,
  position: number,
  timeoutMs = WAIT_FOR_POSITION_MS,
): Promise<void> {
  const waiter = store as Partial<PositionWaiter>;
  if (typeof waiter.waitForPosition === 'function') {
    await waiter.waitForPosition(domain, position, timeoutMs);
    return;
  }
  await refuseUnheldPosition(store, domain, position);
}

/** A store that holds everything acknowledged: a position past its log's end fails at once. */
export async function refuseUnheldPosition(
  store: EventStore,
  domain: string,
  position: number,
): Promise<void> {
  if ((await logEnd(store, domain)) <= position) {
    throw new RingStoreError('APPLY_TIMEOUT', `domain ${domain} holds no position ${position}`, {
      domain,
      position,
    });
  }
}
