import { JetStreamApiError } from '@nats-io/jetstream';
import { NoRespondersError, RequestError, TimeoutError } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import {
  isNoResponders,
  isTemporarilyUnavailable,
  isTimeout,
} from '../../src/pipeline/cluster/nats-errors.js';

/**
 * The transient answers that opening JetStream retries (jetstream-connection.ts) are told
 * apart from every other refusal, also when a request error wraps them as its cause.
 */
describe('NATS error kinds', () => {
  it('finds a timeout, also as the cause of a request error', () => {
    expect(isTimeout(new TimeoutError())).toBe(true);
    expect(isTimeout(new RequestError('request failed', { cause: new TimeoutError() }))).toBe(true);
    expect(isTimeout(new Error('jetstream not enabled'))).toBe(false);
    expect(isTimeout(new NoRespondersError('$JS.API.INFO'))).toBe(false);
    expect(isTimeout('timeout')).toBe(false);
  });

  it('finds no responders, also as the cause of a request error', () => {
    const noResponders = new NoRespondersError('$JS.API.INFO');
    expect(isNoResponders(noResponders)).toBe(true);
    expect(isNoResponders(new RequestError('request failed', { cause: noResponders }))).toBe(true);
    expect(isNoResponders(new TimeoutError())).toBe(false);
  });

  it('finds "JetStream system temporarily unavailable" (10008) and nothing else by it', () => {
    const unavailable = (code: number) =>
      new JetStreamApiError({
        err_code: code,
        code: 503,
        description: 'JetStream system temporarily unavailable',
      });
    expect(isTemporarilyUnavailable(unavailable(10008))).toBe(true);
    expect(isTemporarilyUnavailable(unavailable(10039))).toBe(false);
    expect(isTemporarilyUnavailable(new Error('JetStream system temporarily unavailable'))).toBe(false);
    expect(isTemporarilyUnavailable(new TimeoutError())).toBe(false);
  });
});
