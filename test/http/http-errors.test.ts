import { describe, expect, it } from 'vitest';
import { toRingStoreError } from '../../src/api/http/http-errors.js';
import { RingStoreError } from '../../src/errors.js';

/** Whatever a store throws becomes a catalog error, even a value that throws when it is read. */
describe('toRingStoreError', () => {
  it('keeps a RingStoreError, maps a rebuilt one and fastify codes, and makes anything else INTERNAL', () => {
    const conflict = new RingStoreError('VERSION_CONFLICT');
    expect(toRingStoreError(conflict)).toBe(conflict);
    expect(toRingStoreError({ code: 'NOT_FOUND', message: 'gone', details: { domain: 'd' } })).toMatchObject({
      code: 'NOT_FOUND',
      message: 'gone',
      details: { domain: 'd' },
    });
    expect(toRingStoreError({ code: 'FST_ERR_BAD_URL' }).code).toBe('BAD_REQUEST');
    expect(toRingStoreError({ statusCode: 404 }).code).toBe('BAD_REQUEST');
    for (const value of [
      new Error('boom'),
      'text',
      42,
      null,
      undefined,
      { code: 'NO_SUCH_CODE', message: 'x' },
    ]) {
      expect(toRingStoreError(value).code).toBe('INTERNAL');
    }
  });

  it('answers INTERNAL for a value whose properties or prototype throw when read', () => {
    const throwingGetter = {
      get code(): string {
        throw new Error('code getter');
      },
    };
    const throwingProxy = new Proxy(
      {},
      {
        get() {
          throw new Error('get trap');
        },
        getPrototypeOf() {
          throw new Error('getPrototypeOf trap');
        },
      },
    );
    for (const value of [throwingGetter, throwingProxy]) {
      const error = toRingStoreError(value);
      expect(error).toBeInstanceOf(RingStoreError);
      expect(error.code).toBe('INTERNAL');
    }
  });
});
