import { inspect } from 'node:util';
import { RingStoreError } from '../../errors.js';
import type { PutResult } from '../../types.js';
import { checkClientAppend } from '../consumer-positions.js';
import type { EventStore } from '../event-store.js';
import { parseEventsBody } from './events-body.js';
import { publicError, toRingStoreError } from './http-errors.js';
import { decodeEvents, isPlainObject, payloadBytes, putOptions, putResultJson } from './wire.js';

/**
 * POST /v1/ingest: NDJSON in, NDJSON out.
 *
 *   request body  ──► LineSplitter ──► one put per line, at most `maxInFlight` unsettled ──► results in line order
 *   (a stream,        (split on \n,  (submitted in line order, so a line may depend on     (yielded after the turn in
 *    never buffered)   bounded)       an earlier line's version)                            which the head of the queue
 *                                                                                           settles: one write per commit)
 *
 * Reading stops while `maxInFlight` puts are unsettled, and the response is pulled by the socket, so
 * memory per request is bounded by maxInFlight lines plus one, whatever the body size. A line's
 * events are views of its bytes, so an unsettled line keeps the chunk it arrived in (or, when it
 * spanned chunks, its own copy) alive until its put settles.
 */

export interface IngestOptions {
  store: EventStore;
  maxLineBytes: number;
  maxInFlight: number;
  /** Returns the error to report for a line whose domain the caller may not append to. */
  authorize(domain: string): RingStoreError | undefined;
  onAppended(result: PutResult, events: number, bytes: number): void;
  /** Called for every failed line with the catalog error and what was originally thrown. */
  onError(error: RingStoreError, cause: unknown): void;
}

/** A line's bytes (not decoded: parseEventsBody scans the UTF-8), or the size of an over-long one. */
type Line = { bytes: Buffer } | { tooLarge: number };

const NEWLINE = 0x0a;

/**
 * Splits a byte stream into lines, synchronously per chunk, never holding more than one partial
 * line (at most maxLineBytes). A longer line is dropped as it streams by and reported as tooLarge.
 */
export class LineSplitter {
  readonly #maxLineBytes: number;
  #parts: Buffer[] = [];
  #partBytes = 0;
  /** Bytes of an over-long line dropped so far (0: not dropping). */
  #skipping = 0;

  constructor(maxLineBytes: number) {
    this.#maxLineBytes = maxLineBytes;
  }

  push(chunk: Buffer): Line[] {
    const out: Line[] = [];
    let start = 0;
    while (start < chunk.length) {
      const end = chunk.indexOf(NEWLINE, start);
      const stop = end === -1 ? chunk.length : end;
      const piece = stop - start;
      if (this.#skipping > 0 || this.#partBytes + piece > this.#maxLineBytes) {
        this.#skipping = Math.max(this.#skipping, this.#partBytes) + piece;
        this.#parts = [];
        this.#partBytes = 0;
      } else if (piece > 0) {
        this.#parts.push(chunk.subarray(start, stop));
        this.#partBytes += piece;
      }
      if (end === -1) break;
      this.#emit(out);
      start = end + 1;
    }
    return out;
  }

  end(): Line[] {
    const out: Line[] = [];
    this.#emit(out);
    return out;
  }

  #emit(out: Line[]): void {
    if (this.#skipping > 0) out.push({ tooLarge: this.#skipping });
    else if (this.#partBytes > 0) {
      // Most lines arrive within one chunk: that slice is the line, a view of the chunk, not a copy.
      // A stream never writes to a chunk it has emitted, so the view stays valid while the line's
      // events (views of it in turn) wait for the store.
      const bytes =
        this.#parts.length === 1 ? (this.#parts[0] as Buffer) : Buffer.concat(this.#parts, this.#partBytes);
      // A blank line (or a lone \r of CRLF input) is not a batch: it gets no result.
      if (!isBlank(bytes)) out.push({ bytes });
    }
    this.#parts = [];
    this.#partBytes = 0;
    this.#skipping = 0;
  }
}

/** Only spaces, tabs and carriage returns (as text: any other byte decodes to another character). */
function isBlank(bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i] as number;
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d) return false;
  }
  return true;
}

const LINE_KEYS = new Set(['domain', 'aggregateType', 'id', 'events', 'expectedVersion', 'idempotencyKey']);

interface Pending {
  settled: boolean;
  line: string;
  done: Promise<string>;
}

function errorLine(err: unknown): { line: string; error: RingStoreError } {
  const error = toRingStoreError(err);
  const wire = publicError(error);
  return { line: `${JSON.stringify({ ok: false, error: wire })}\n`, error };
}

/** A line submitted to the store: its put, and what the appended metrics count if it succeeds. */
interface Submitted {
  put: Promise<PutResult>;
  events: number;
  bytes: number;
}

/**
 * The caller's hooks (metrics, logging), as one ingest request runs them. A hook that throws (or
 * returns a promise that rejects) changes no line's answer, ends nothing and leaves no rejection
 * unhandled: its first failure in the request becomes a process warning, and later ones are not
 * repeated line by line.
 */
class IngestHooks {
  readonly #options: IngestOptions;
  readonly #warned = new Set<string>();

  constructor(options: IngestOptions) {
    this.#options = options;
  }

  appended(result: PutResult, events: number, bytes: number): void {
    this.#run('onAppended', () => this.#options.onAppended(result, events, bytes));
  }

  /** The result line of a line that failed, reported to onError. */
  failedLine(err: unknown): string {
    const { line, error } = errorLine(err);
    this.#run('onError', () => this.#options.onError(error, err));
    return line;
  }

  #run(name: string, hook: () => unknown): void {
    try {
      const returned = hook();
      if (returned instanceof Promise) returned.catch((err: unknown) => this.#warn(name, err));
    } catch (err) {
      this.#warn(name, err);
    }
  }

  #warn(name: string, err: unknown): void {
    if (this.#warned.has(name)) return;
    this.#warned.add(name);
    process.emitWarning(`the NDJSON ingest hook ${name} threw: ${describe(err)}`);
  }
}

/** What was thrown, as text, whatever it is (String() of some objects throws). */
function describe(err: unknown): string {
  try {
    return err instanceof Error ? `${err.name}: ${err.message}` : inspect(err, { depth: 1 });
  } catch {
    return 'a value that cannot be described';
  }
}

/**
 * Parses, checks and submits one line, synchronously: the line's bytes, its envelope and events
 * are referenced by nothing once this returns (the store copied them into its ring), so they die
 * young instead of living until the commit, as they would in the frame of an awaiting function.
 * Returns the result line instead when the line fails before it reaches the store.
 */
function submitLine(line: Line, options: IngestOptions, hooks: IngestHooks): Submitted | string {
  try {
    if ('tooLarge' in line) {
      throw new RingStoreError(
        'PAYLOAD_TOO_LARGE',
        `an NDJSON line is ${line.tooLarge} bytes or more, the limit is ${options.maxLineBytes}`,
      );
    }
    const record = parseEventsBody(line.bytes);
    if (!isPlainObject(record)) throw new RingStoreError('INVALID_BATCH', 'each line must be a JSON object');
    for (const key in record) {
      if (!LINE_KEYS.has(key)) {
        throw new RingStoreError('INVALID_BATCH', `unknown field ${JSON.stringify(key.slice(0, 40))}`);
      }
    }
    const { domain, aggregateType, id } = record;
    const events = decodeEvents(record.events);
    if (typeof domain !== 'string') {
      throw new RingStoreError('INVALID_NAME', 'domain must be a string', { kind: 'domain' });
    }
    const denied = options.authorize(domain);
    if (denied) throw denied;
    checkClientAppend(domain, aggregateType, id, events);
    const put = options.store.put(domain, aggregateType as string, id as string, events, putOptions(record));
    return { put, events: events.length, bytes: payloadBytes(events) };
  } catch (err) {
    return hooks.failedLine(err);
  }
}

/** The result line of a submitted line, once its put settles. */
async function resultLine(submitted: Submitted | string, hooks: IngestHooks): Promise<string> {
  if (typeof submitted === 'string') return submitted;
  let result: PutResult;
  try {
    result = await submitted.put;
  } catch (err) {
    return hooks.failedLine(err);
  }
  if (!result.replayed) hooks.appended(result, submitted.events, submitted.bytes);
  return `{"ok":true,${putResultJson(result).slice(1, -1)}${result.replayed ? ',"replayed":true' : ''}}\n`;
}

/**
 * Yields NDJSON result text for the request body, in line order. All complete lines of a chunk are
 * submitted in one synchronous run, so a store that groups the puts of one turn (group commit)
 * commits them in few commits (RingStore hands them to its writer every handoffBytes of records and
 * at the end of the turn).
 */
export async function* ingestResults(
  source: AsyncIterable<Buffer>,
  options: IngestOptions,
): AsyncGenerator<string> {
  const splitter = new LineSplitter(options.maxLineBytes);
  const hooks = new IngestHooks(options);
  const queue: Pending[] = [];
  let head = 0;
  const submit = (line: Line): void => {
    const done = resultLine(submitLine(line, options, hooks), hooks);
    const pending: Pending = { settled: false, line: '', done };
    queue.push(pending);
    void done.then((text) => {
      pending.line = text;
      pending.settled = true;
    });
  };
  const takeReady = (): string => {
    let ready = '';
    while (head < queue.length && (queue[head] as Pending).settled) {
      ready += (queue[head] as Pending).line;
      head++;
    }
    if (head > 1024) {
      queue.splice(0, head);
      head = 0;
    }
    return ready;
  };
  for await (const chunk of source) {
    for (const line of splitter.push(chunk)) {
      if (queue.length - head >= options.maxInFlight) {
        await settledTurn(queue[head] as Pending);
        const ready = takeReady();
        if (ready.length > 0) yield ready;
      }
      submit(line);
    }
    const ready = takeReady();
    if (ready.length > 0) yield ready;
  }
  for (const line of splitter.end()) submit(line);
  while (head < queue.length) {
    await settledTurn(queue[head] as Pending);
    yield takeReady();
  }
}

/**
 * Waits for `pending` to settle and for the rest of that turn: the puts of one commit settle in one
 * turn (one message from the writer), so the next takeReady answers all of them in one write
 * instead of one write per line.
 */
async function settledTurn(pending: Pending): Promise<void> {
  await pending.done;
  await new Promise((resolve) => setImmediate(resolve));
}
