import type { ServerResponse } from 'node:http';
import { RingStoreError } from '../../errors.js';
import type { EventStore } from '../event-store.js';
import { type Subscription, subscribe } from '../subscription.js';
import { publicError, toRingStoreError } from './http-errors.js';
import { storedEventJson } from './read-answer.js';

/**
 * GET /v1/domains/:domain/subscribe as server-sent events.
 *
 *   id: <position>          one SSE message per event; `id` is the event's domain position, so a
 *   data: <event JSON>      reconnecting EventSource sends Last-Event-ID = the last position seen and
 *                           the stream resumes at position + 1: no gap, no duplicate.
 *   event: caught-up        sent once, when the backlog has been sent (right after its last event, or at
 *   data: {"nextPosition"}  once when there is none); live events follow. It carries no id, so
 *                           Last-Event-ID stays the last event's position.
 *   : ping                  a comment every heartbeat interval keeps proxies from closing idle streams.
 *   event: error            sent once before the server ends a stream for a reason other than the
 *   data: { error }         client leaving (store closed, server shutting down).
 *
 * The subscription is pull-based: the next event is read only after the previous write was taken
 * by the socket (awaiting 'drain'), so a slow client holds at most one page of events here.
 */

export interface SseStream {
  /** Ends the stream from the server side (shutdown): an error message, then the end. */
  end(reason: RingStoreError): void;
}

export interface SseOptions {
  store: EventStore;
  domain: string;
  fromPosition: number | 'end';
  types: string[] | undefined;
  heartbeatMs: number;
  active: Set<SseStream>;
}

function errorMessage(err: RingStoreError): string {
  const wire = publicError(err);
  return `event: error\ndata: ${JSON.stringify({ error: wire })}\n\n`;
}

function waitForDrainOrClose(raw: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      raw.off('drain', done);
      raw.off('close', done);
      resolve();
    };
    raw.on('drain', done);
    raw.on('close', done);
  });
}

/**
 * Subscribes at once, so that options the subscription refuses throw here, before anything is
 * written (an ordinary error answer), and returns the function that streams it to the response.
 */
export function openSseStream(options: SseOptions): (raw: ServerResponse) => Promise<void> {
  const abort = new AbortController();
  let target: ServerResponse | undefined;
  const subscription = subscribe(options.store, options.domain, {
    fromPosition: options.fromPosition,
    ...(options.types ? { types: options.types } : {}),
    signal: abort.signal,
    onCaughtUp: () => {
      if (target && !target.destroyed)
        target.write(`event: caught-up\ndata: {"nextPosition":${subscription.nextPosition}}\n\n`);
    },
  });
  return (raw) => {
    target = raw;
    return streamTo(raw, subscription, abort, options);
  };
}

async function streamTo(
  raw: ServerResponse,
  subscription: Subscription,
  abort: AbortController,
  options: SseOptions,
): Promise<void> {
  let ending: RingStoreError | undefined;
  const stream: SseStream = {
    end(reason) {
      ending = reason;
      abort.abort();
    },
  };
  options.active.add(stream);
  raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  raw.write(': subscribed\n\n');
  const heartbeat = setInterval(() => raw.write(': ping\n\n'), options.heartbeatMs);
  heartbeat.unref();
  const onClose = (): void => abort.abort();
  raw.on('close', onClose);
  // A client gone before the listener was attached would otherwise be noticed at the next event.
  if (raw.destroyed) abort.abort();
  try {
    for await (const event of subscription) {
      if (raw.destroyed) break;
      const message = `id: ${event.position}\ndata: ${storedEventJson(event, true)}\n\n`;
      if (!raw.write(message)) await waitForDrainOrClose(raw);
    }
    if (!ending && subscription.endReason === 'store-closed') ending = new RingStoreError('STORE_CLOSED');
  } catch (err) {
    ending = toRingStoreError(err);
  } finally {
    clearInterval(heartbeat);
    raw.off('close', onClose);
    options.active.delete(stream);
    await subscription.close();
    if (!raw.destroyed) {
      if (ending) raw.write(errorMessage(ending));
      raw.end();
    }
  }
}
