import { describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/api/event-store.js';
import { ingestResults } from '../../src/api/http/ingest.js';
import type { PutResult } from '../../src/types.js';

const RESULT: PutResult = {
  firstVersion: 1,
  lastVersion: 1,
  firstPosition: 0,
  generation: 1,
  timestamp: 5,
  durability: 'fsync',
  replayed: false,
};

/** A store whose puts all settle together when `commit()` is called, as one group commit does. */
function groupCommitStore(): { store: EventStore; commit(): void; pending(): number } {
  let waiting: (() => void)[] = [];
  const store = {
    put: () => new Promise<PutResult>((resolve) => waiting.push(() => resolve(RESULT))),
  } as unknown as EventStore;
  return {
    store,
    commit() {
      const settle = waiting;
      waiting = [];
      for (const resolve of settle) resolve();
    },
    pending: () => waiting.length,
  };
}

function line(id: number): string {
  return JSON.stringify({
    domain: 'd',
    aggregateType: 'a',
    id: String(id),
    events: [{ type: 'T', data: id }],
  });
}

async function collect(source: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const text of source) out.push(text);
  return out;
}

describe('ingestResults', () => {
  it('answers the lines one commit settles in one write, not one write per line', async () => {
    const { store, commit, pending } = groupCommitStore();
    async function* body() {
      yield Buffer.from(`${[1, 2, 3, 4, 5].map(line).join('\n')}\n`);
    }
    const options = {
      store,
      maxLineBytes: 1 << 20,
      maxInFlight: 64,
      authorize: () => undefined,
      onAppended: () => {},
      onError: () => {},
    };
    const answer = collect(ingestResults(body(), options));
    while (pending() < 5) await new Promise((resolve) => setImmediate(resolve));
    commit();
    const writes = await answer;
    expect(writes).toHaveLength(1);
    expect(writes[0]!.trimEnd().split('\n')).toHaveLength(5);
  });

  it('answers in line order when later lines settle first, each line once', async () => {
    const { store, commit, pending } = groupCommitStore();
    async function* body() {
      yield Buffer.from(`${line(1)}\n${line(2)}\n`);
      while (pending() < 2) await new Promise((resolve) => setImmediate(resolve));
      yield Buffer.from(`${line(3)}\n`);
    }
    const options = {
      store,
      maxLineBytes: 1 << 20,
      maxInFlight: 2,
      authorize: () => undefined,
      onAppended: () => {},
      onError: () => {},
    };
    const answer = collect(ingestResults(body(), options));
    // maxInFlight 2: the third line waits for the first to settle, then one more commit settles it.
    while (pending() < 2) await new Promise((resolve) => setImmediate(resolve));
    commit();
    while (pending() < 1) await new Promise((resolve) => setImmediate(resolve));
    commit();
    const lines = (await answer).join('').trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines.every((l) => l.startsWith('{"ok":true'))).toBe(true);
  });
});
