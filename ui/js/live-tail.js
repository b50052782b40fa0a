import { apiUrl, authHeaders, errorOf } from './api.js';
import { readEventStream } from './sse-reader.js';

const RETRY_MS = [500, 1000, 2000, 5000];

/**
 * Follows a domain through GET /v1/domains/:domain/subscribe and survives dropped connections:
 * after the first event it resumes with Last-Event-ID (the server continues at that position + 1),
 * before any event at the `caught-up` position, so every event is shown exactly once. An error
 * answer (401, 403, a bad domain) stops it, as retrying would not help.
 *
 * handlers: onEvent(event), onState(text), onError(apiError)
 */
export function startTail({ domain, types, from }, handlers) {
  const abort = new AbortController();
  let lastId;
  let resumeAt = from;
  let attempt = 0;

  async function connect() {
    const headers = authHeaders({ accept: 'text/event-stream' });
    if (lastId !== undefined) headers['last-event-id'] = lastId;
    const url = apiUrl(`v1/domains/${encodeURIComponent(domain)}/subscribe`, {
      fromPosition: resumeAt,
      types,
    });
    const response = await fetch(url, { headers, signal: abort.signal, cache: 'no-store' });
    if (!response.ok) throw Object.assign(await errorOf(response), { final: true });
    handlers.onState(
      attempt === 0 ? 'connected' : `reconnected (resuming after position ${lastId ?? resumeAt})`,
    );
    attempt = 0;
    await readEventStream(response.body, (message) => {
      if (message.event === 'message') {
        lastId = message.id;
        handlers.onEvent(JSON.parse(message.data));
      } else if (message.event === 'caught-up') {
        const { nextPosition } = JSON.parse(message.data);
        if (lastId === undefined) resumeAt = nextPosition;
        handlers.onState(`live: caught up at position ${nextPosition}`);
      } else if (message.event === 'error') {
        handlers.onState(`the server ended the stream: ${JSON.parse(message.data).error.code}`);
      }
    });
  }

  (async () => {
    while (!abort.signal.aborted) {
      try {
        await connect();
      } catch (err) {
        if (abort.signal.aborted) break;
        if (err.final) {
          handlers.onError(err);
          handlers.onState('stopped');
          return;
        }
      }
      if (abort.signal.aborted) break;
      const wait = RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)];
      attempt++;
      handlers.onState(`connection lost: reconnecting in ${wait / 1000} s`);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  })();

  return () => {
    abort.abort();
    handlers.onState('stopped');
  };
}
