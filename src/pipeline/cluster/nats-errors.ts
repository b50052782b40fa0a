import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';

/** JetStream's code for a publish whose Nats-Expected-Last-Msg-Id is not the stream's last (10070). */
const STREAM_WRONG_LAST_MSG_ID = 10070;

/**
 * JetStream refused a publish because the stream's end was not the one expected: its last sequence
 * (Nats-Expected-Last-Sequence) or its last message id (Nats-Expected-Last-Msg-Id). Nothing of
 * the message was stored.
 */
export function isWrongLastSequence(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === STREAM_WRONG_LAST_MSG_ID)
  );
}

/**
 * JetStream's code for "JetStream system temporarily unavailable" (10008): a clustered server
 * answers it while its meta group has no leader, e.g. just after the cluster started or resumed.
 */
const CLUSTER_NOT_AVAILABLE = 10008;

/** JetStream answered that it cannot serve its API yet (no meta leader): worth asking again. */
export function isTemporarilyUnavailable(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === CLUSTER_NOT_AVAILABLE;
}

/** JetStream answered: the stream does not exist. */
export function isStreamNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound;
}

/** The error or one of its causes (a request error wraps what happened) matches. */
function inChain(err: unknown, matches: (e: Error) => boolean): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e instanceof Error; depth++) {
    if (matches(e)) return true;
    e = e.cause;
  }
  return false;
}

/** Nobody listens on the subject: a request was never delivered (safe to send again). */
export function isNoResponders(err: unknown): boolean {
  return inChain(err, (e) => e.name === 'NoRespondersError' || /no responders/i.test(e.message));
}

/** A request got no answer in time (it may or may not have been acted on). */
export function isTimeout(err: unknown): boolean {
  return inChain(err, (e) => e.name === 'TimeoutError');
}

export function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
