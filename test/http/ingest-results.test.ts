import { describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/api/event-store.js';
import { ingestResults } from '../../src/api/http/ingest.js';
import type { PutResult } from '../../src/types.js';
import { ingestOptions } from '../support/ingest-options.js';
import { PUT_RESULT } from '../support/put-result.js';

/** A store whose puts all settle together when `commit()` is called, as one group commit does. */
function groupCommitStore(): { store: EventStore; commit(): void; pending(): number } {
  let waiting: (() => void)[] = [];
  const store = {
    put: () => new Promise<PutResult>((resolve) => waiting.push(() => resolve(PUT_RESULT))),
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
    const options = ingestOptions(store, 64);
    const answer = collect(ingestResults(body(), options));
    while (pending() < 5) await new Promise((resolve) => setImmediate(resolve));
    commit();
    const writes = await answer;
    expect(writes).toHaveLength(1);
    expect(writes[0]!.trimEnd().split('\n')).toHaveLength(5);
  });

  for (const maxInFlight of [1, 2, 3, 64]) {
    it(`answers in line order when later puts settle first, errors mixed in (maxInFlight ${maxInFlight})`, async () => {
      const waiting: { id: number; resolve: (r: PutResult) => void; reject: (e: unknown) => void }[] = [];
      const store = {
        put: (_domain: string, _type: string, id: string) =>
          new Promise<PutResult>((resolve, reject) => waiting.push({ id: Number(id), resolve, reject })),
      } as unknown as EventStore;
      const ids = [1, 2, 3, 4, 5, 6, 7, 8];
      async function* body() {
        yield Buffer.from(`${ids.map((id) => (id % 3 === 0 ? 'not json' : line(id))).join('\n')}\n`);
      }
      const options = ingestOptions(store, maxInFlight);
      let finished = false;
      const answer = collect(ingestResults(body(), options)).finally(() => {
        finished = true;
      });
      while (!finished) {
        await new Promise((resolve) => setImmediate(resolve));
        // Every put waiting settles, the latest first; line 5's put fails.
        for (const put of waiting.splice(0).reverse()) {
          if (put.id === 5) put.reject(new Error('disk on fire'));
          else put.resolve({ ...PUT_RESULT, firstVersion: put.id, lastVersion: put.id });
        }
      }
      const lines = (await answer).join('').trimEnd().split('\n');
      expect(
        lines.map((l) => JSON.parse(l) as { ok: boolean; firstVersion?: number; error?: { code: string } }),
      ).toEqual(
        ids.map((id) =>
          id % 3 === 0
            ? { ok: false, error: expect.objectContaining({ code: 'INVALID_JSON' }) }
            : id === 5
              ? { ok: false, error: expect.objectContaining({ code: 'INTERNAL' }) }
              : expect.objectContaining({ ok: true, firstVersion: id }),
        ),
      );
    });
  }

  it('answers a line INTERNAL when its put rejects with a value that throws when read, and goes on', async () => {
    const hostile = {
      get code(): string {
        throw new Error('code getter');
      },
    };
    const store = {
      put: (_domain: string, _type: string, id: string) =>
        id === '2'
          ? Promise.reject(hostile)
          : Promise.resolve({ ...PUT_RESULT, firstVersion: Number(id), lastVersion: Number(id) }),
    } as unknown as EventStore;
    async function* body() {
      yield Buffer.from(`${[1, 2, 3].map(line).join('\n')}\n`);
    }
    const lines = (await collect(ingestResults(body(), ingestOptions(store, 4))))
      .join('')
      .trimEnd()
      .split('\n');
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual([
      expect.objectContaining({ ok: true, firstVersion: 1 }),
      { ok: false, error: expect.objectContaining({ code: 'INTERNAL' }) },
      expect.objectContaining({ ok: true, firstVersion: 3 }),
    ]);
  });

  const throwers: [string, () => unknown][] = [
    ['an Error', () => new Error('hook broke')],
    ['an object with no primitive form', () => Object.create(null)],
    [
      'an Error whose toString throws',
      () =>
        Object.assign(new Error('hook broke'), {
          toString() {
            throw new Error('no');
          },
        }),
    ],
  ];
  for (const [what, thrown] of throwers) {
    for (const style of ['sync', 'async'] as const) {
      it(`answers every line as the store settled it when the hooks throw ${what} (${style}), and warns once per hook`, async () => {
        const warnings: string[] = [];
        const onWarning = (warning: Error) => warnings.push(warning.message);
        process.on('warning', onWarning);
        const rejections: unknown[] = [];
        const onRejection = (reason: unknown) => rejections.push(reason);
        process.on('unhandledRejection', onRejection);
        try {
          const { store, commit } = groupCommitStore();
          async function* body() {
            yield Buffer.from(`${line(1)}\nnot json\n${line(2)}\nnot json either\n`);
          }
          const hook =
            style === 'sync'
              ? () => {
                  throw thrown();
                }
              : async () => {
                  throw thrown();
                };
          const options = { ...ingestOptions(store, 10), onAppended: hook, onError: hook };
          const answer = collect(ingestResults(body(), options));
          await new Promise((resolve) => setImmediate(resolve));
          commit();
          const lines = (await answer).join('').trimEnd().split('\n');
          expect(lines.map((l) => (JSON.parse(l) as { ok: boolean }).ok)).toEqual([true, false, true, false]);
          await new Promise((resolve) => setImmediate(resolve));
          expect(rejections).toEqual([]);
          expect(warnings.filter((w) => w.includes('hook onAppended threw'))).toHaveLength(1);
          expect(warnings.filter((w) => w.includes('hook onError threw'))).toHaveLength(1);
        } finally {
          process.off('warning', onWarning);
          process.off('unhandledRejection', onRejection);
        }
      });
    }
  }
});
