import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';

/** JetStream refused a publish because the stream's last sequence was not the one expected. */
export function isWrongLastSequence(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence;
}

/** JetStream answered: the stream does not exist. */
export function isStreamNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound;
}

/** Nobody listens on the subject: a request was never delivered (safe to send again). */
export function isNoResponders(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e instanceof Error; depth++) {
    if (e.name === 'NoRespondersError' || /no responders/i.test(e.message)) return true;
    e = e.cause;
  }
  return false;
}

export function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
