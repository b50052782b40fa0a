import { RingStoreError } from '../../errors.js';

/**
 * Whether a cluster node routes a failed put again (docs/CLUSTER.md, "How a put travels"):
 *
 *   NOT_OWNER             never published (the owner stepped down or did not answer): again until
 *                         `putTimeoutMs` after the put began
 *   CLUSTER_UNAVAILABLE   the outcome is unknown (a publish or a forwarded request went unanswered):
 *                         again only when the put carries an idempotency key, which makes a second
 *                         attempt replay the first if that was stored after all; until twice
 *                         `putTimeoutMs` after the put began, since the first attempt may have used
 *                         one whole timeout
 *   anything else         an answer: never again
 */
export function routesAgain(err: unknown, keyed: boolean, elapsedMs: number, putTimeoutMs: number): boolean {
  if (!(err instanceof RingStoreError)) return false;
  if (err.code === 'NOT_OWNER') return elapsedMs <= putTimeoutMs;
  if (err.code === 'CLUSTER_UNAVAILABLE') return keyed && elapsedMs <= 2 * putTimeoutMs;
  return false;
}
