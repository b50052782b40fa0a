import { describe, expect, it } from 'vitest';
import { routesAgain } from '../../src/api/cluster/put-retry.js';
import { RingStoreError } from '../../src/errors.js';

describe('routesAgain (a cluster put after a failed attempt)', () => {
  const timeout = 1000;
  it('routes NOT_OWNER again until the put timeout', () => {
    const err = new RingStoreError('NOT_OWNER');
    expect(routesAgain(err, false, 999, timeout)).toBe(true);
    expect(routesAgain(err, false, 1001, timeout)).toBe(false);
  });

  it('routes an unknown outcome again only with an idempotency key, within twice the timeout', () => {
    const err = new RingStoreError('CLUSTER_UNAVAILABLE');
    expect(routesAgain(err, false, 10, timeout)).toBe(false);
    expect(routesAgain(err, true, 1500, timeout)).toBe(true);
    expect(routesAgain(err, true, 2001, timeout)).toBe(false);
  });

  it('never routes an answer again', () => {
    expect(routesAgain(new RingStoreError('VERSION_CONFLICT'), true, 0, timeout)).toBe(false);
    expect(routesAgain(new Error('boom'), true, 0, timeout)).toBe(false);
  });
});
