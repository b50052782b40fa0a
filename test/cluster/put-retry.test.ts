import { describe, expect, it } from 'vitest';
import { PutRetry } from '../../src/api/cluster/put-retry.js';
import { RingStoreError } from '../../src/errors.js';

describe('PutRetry (a cluster put after a failed attempt)', () => {
  const timeout = 1000;
  const notOwner = new RingStoreError('NOT_OWNER', 'domain d: the owner stepped down', { domain: 'd' });
  const unknown = new RingStoreError('CLUSTER_UNAVAILABLE');

  it('routes NOT_OWNER again until the put timeout, then answers it as it is', () => {
    const retry = new PutRetry(false, timeout, 0);
    expect(retry.again(notOwner, 999)).toBe(true);
    expect(retry.again(notOwner, 1001)).toBe(false);
    expect(retry.answer(notOwner)).toBe(notOwner);
  });

  it('routes an unknown outcome again only with an idempotency key, within three timeouts', () => {
    expect(new PutRetry(false, timeout, 0).again(unknown, 10)).toBe(false);
    const keyed = new PutRetry(true, timeout, 0);
    expect(keyed.again(unknown, 2500)).toBe(true);
    expect(keyed.again(unknown, 3001)).toBe(false);
  });

  it('gives NOT_OWNER a fresh timeout after an unknown outcome, within the same total', () => {
    const retry = new PutRetry(true, timeout, 0);
    expect(retry.again(unknown, 1900)).toBe(true);
    // Past the first timeout since the put began, but within one since the unknown outcome.
    expect(retry.again(notOwner, 2500)).toBe(true);
    expect(retry.again(notOwner, 2901)).toBe(false);
  });

  it('never says "nothing was stored" once an attempt may have been stored', () => {
    const retry = new PutRetry(true, timeout, 0);
    retry.again(unknown, 1200);
    expect(retry.again(notOwner, 2300)).toBe(false);
    const answer = retry.answer(notOwner);
    expect(answer).toBeInstanceOf(RingStoreError);
    expect(answer).toMatchObject({ code: 'CLUSTER_UNAVAILABLE', details: { domain: 'd' } });
    expect(String(answer)).toContain('same idempotency key');
  });

  it('never routes an answer again', () => {
    const retry = new PutRetry(true, timeout, 0);
    const conflict = new RingStoreError('VERSION_CONFLICT');
    expect(retry.again(conflict, 0)).toBe(false);
    expect(retry.answer(conflict)).toBe(conflict);
    expect(retry.again(new Error('boom'), 0)).toBe(false);
  });
});
