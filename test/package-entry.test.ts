import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type DecidedEvent, handleCommand, RingStore, subscribe } from '../src/index.js';

/** The README's embedded example, through the package entry point only. */
describe('package entry: the README example', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('opens, appends, reads, subscribes, decides and closes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringstore-entry-'));
    dirs.push(dir);
    const store = await RingStore.open({ dir });
    const person = store.domain('namespace').aggregate('person');
    const id = store.newKey();
    const put = await person.instance(id).put({
      type: 'Registered',
      data: '{"first":"John"}',
      metadata: '{"correlationId":"signup-17","causationId":"cmd-3"}',
    });
    expect(put).toMatchObject({ firstVersion: 1, lastVersion: 1, durability: 'fsync', replayed: false });
    await person
      .instance(id)
      .put([{ type: 'NameChanged', data: '{"first":"Jaughn"}' }], { expectedVersion: 1 });
    const { version, events } = await store.get('namespace', 'person', id);
    expect(version).toBe(2);
    expect(events.map((e) => e.type)).toEqual(['Registered', 'NameChanged']);
    expect(events.map((e) => new TextDecoder().decode(e.metadata))).toEqual([
      '{"correlationId":"signup-17","causationId":"cmd-3"}',
      '',
    ]);

    const live = subscribe(store, 'namespace', { fromPosition: 0 });
    const seen: string[] = [];
    for await (const event of live) {
      seen.push(event.type);
      if (seen.length === 2) break;
    }
    expect(seen).toEqual(['Registered', 'NameChanged']);

    type Counted = DecidedEvent<'Incremented', { value: number }>;
    const counter = store.domain('namespace').aggregate('counter').instance(7n);
    const decider = {
      initialState: () => 0,
      evolve: (_state: number, event: Counted) => event.data.value,
      decide: (_command: 'inc', state: number): Counted[] => [
        { type: 'Incremented', data: { value: state + 1 } },
      ],
    };
    const ref = { domain: 'namespace', aggregateType: 'counter', id: counter.id };
    await Promise.all(
      [1, 2, 3].map(() => handleCommand(store, ref, 'inc' as const, decider, { maxRetries: 5 })),
    );
    expect((await counter.get()).version).toBe(3);
    await store.close();
  });
});
