import { hasCode, RingStoreError } from '../errors.js';
import type { EventInput, PutResult, StoredEvent } from '../types.js';
import type { AggregateIdInput, EventStore } from './event-store.js';
import { instanceStream, validatePageSize } from './streams.js';

/**
 * The decider of the original notes ("Decide: Command → State → Event list; ApplyStateChange:
 * State → Event → State"), in the shape emmett users know: `{ initialState, evolve, decide }`.
 * handleCommand loads an instance, folds its events with evolve, asks decide for new events and
 * appends them with the loaded version as expectedVersion. When another writer got there first
 * (VERSION_CONFLICT) it reloads and decides again, a bounded number of times.
 */

/** An event as deciders see it: a type name and decoded data. */
export interface DecidedEvent<Type extends string = string, Data = unknown> {
  type: Type;
  data: Data;
}

export interface Decider<State, Command, Event extends DecidedEvent> {
  initialState: () => State;
  evolve: (state: State, event: Event) => State;
  /** May return one event, a list (empty: nothing to append), or a promise of either. */
  decide: (command: Command, state: State) => Event | readonly Event[] | Promise<Event | readonly Event[]>;
}

/** Turns decided events into stored bytes and back. */
export interface EventCodec<Event extends DecidedEvent> {
  encode(event: Event): EventInput;
  decode(stored: StoredEvent): Event;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * The default codec: data as compact JSON text in UTF-8 (what the HTTP API stores for JSON data).
 * `data: undefined` is stored as zero bytes and read back as undefined.
 */
export const jsonCodec: EventCodec<DecidedEvent> = Object.freeze({
  encode(event: DecidedEvent): EventInput {
    if (event.data === undefined) return { type: event.type };
    let text: string | undefined;
    try {
      text = JSON.stringify(event.data);
    } catch (err) {
      throw new RingStoreError(
        'INVALID_EVENT',
        `event ${event.type}: data is not JSON-serialisable (${err})`,
      );
    }
    if (text === undefined) {
      throw new RingStoreError('INVALID_EVENT', `event ${event.type}: data is not JSON-serialisable`);
    }
    return { type: event.type, data: encoder.encode(text) };
  },
  decode(stored: StoredEvent): DecidedEvent {
    if (stored.data.byteLength === 0) return { type: stored.type, data: undefined };
    try {
      return { type: stored.type, data: JSON.parse(decoder.decode(stored.data)) };
    } catch {
      throw new RingStoreError(
        'INVALID_EVENT',
        `event at version ${stored.version} (${stored.type}) is not UTF-8 JSON; pass a codec that reads it`,
        { version: stored.version },
      );
    }
  },
});

export interface HandleCommandOptions<Event extends DecidedEvent> {
  /** How many times to reload and decide again after a VERSION_CONFLICT (default 3). */
  maxRetries?: number;
  /** Default: jsonCodec. */
  codec?: EventCodec<Event>;
  /** Events per store.get while loading (default 1000). */
  pageSize?: number;
}

export interface InstanceRef {
  domain: string;
  aggregateType: string;
  id: AggregateIdInput;
}

export interface CommandResult<State, Event extends DecidedEvent> {
  /** The state after folding the loaded events and then the new ones. */
  newState: State;
  /** The events decide returned (and that were appended). */
  newEvents: Event[];
  /** The instance's version after this command: the expectedVersion for the next one. */
  nextExpectedVersion: number;
  /** The put's result, or undefined when decide returned no events and nothing was appended. */
  result: PutResult | undefined;
  /** How many times the command was decided: 1 + the conflicts retried. */
  attempts: number;
}

export const DEFAULT_MAX_RETRIES = 3;
const MAX_RETRIES_LIMIT = 1000;

function validateMaxRetries(value: unknown): number {
  if (value === undefined) return DEFAULT_MAX_RETRIES;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > MAX_RETRIES_LIMIT) {
    throw new RingStoreError(
      'INVALID_OPTION',
      `maxRetries must be an integer from 0 to ${MAX_RETRIES_LIMIT}`,
      {
        option: 'maxRetries',
      },
    );
  }
  return value;
}

/**
 * Loads the instance, folds, decides and appends with expectedVersion = the loaded version,
 * retrying up to maxRetries times on VERSION_CONFLICT; after that the conflict is thrown (with
 * `attempts` in its details). Errors thrown by decide or evolve propagate and append nothing.
 */
export async function handleCommand<State, Command, Event extends DecidedEvent>(
  store: EventStore,
  instance: InstanceRef,
  command: Command,
  decider: Decider<State, Command, Event>,
  options: HandleCommandOptions<Event> = {},
): Promise<CommandResult<State, Event>> {
  const maxRetries = validateMaxRetries(options.maxRetries);
  const pageSize = validatePageSize(options.pageSize);
  const codec = options.codec ?? (jsonCodec as unknown as EventCodec<Event>);
  const { domain, aggregateType, id } = instance;
  for (let attempt = 1; ; attempt++) {
    // Pinned to the generation at load time: the fold is one consistent state of the instance.
    const stream = instanceStream(store, domain, aggregateType, id, { pageSize });
    let state = decider.initialState();
    for await (const stored of stream) state = decider.evolve(state, codec.decode(stored));
    const loadedVersion = stream.instanceVersion ?? 0;

    const decided = await decider.decide(command, state);
    const newEvents: Event[] = Array.isArray(decided) ? [...decided] : [decided as Event];
    if (newEvents.length === 0) {
      return {
        newState: state,
        newEvents,
        nextExpectedVersion: loadedVersion,
        result: undefined,
        attempts: attempt,
      };
    }
    const inputs = newEvents.map((event) => codec.encode(event));
    let result: PutResult;
    try {
      result = await store.put(domain, aggregateType, id, inputs, { expectedVersion: loadedVersion });
    } catch (err) {
      if (!hasCode(err, 'VERSION_CONFLICT')) throw err;
      if (attempt <= maxRetries) continue;
      const conflict = err as RingStoreError;
      throw new RingStoreError(
        'VERSION_CONFLICT',
        `${conflict.message} (gave up after ${attempt} attempts)`,
        {
          ...conflict.details,
          attempts: attempt,
        },
      );
    }
    for (const event of newEvents) state = decider.evolve(state, event);
    return { newState: state, newEvents, nextExpectedVersion: result.lastVersion, result, attempts: attempt };
  }
}
