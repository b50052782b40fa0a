/**
 * The EventStore contract lives in src/model (storage implements it and must not import src/api);
 * the api layer re-exports it under its public name.
 */
export type { AggregateIdInput, CommitNotice, EventStore } from '../model/event-store.js';
