import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { EventStore } from '../../src/api/event-store.js';
import type { StoredEvent } from '../../src/types.js';

/** Every event of a domain, in position order. */
export async function readAll(store: EventStore, domain: string): Promise<StoredEvent[]> {
  const events: StoredEvent[] = [];
  let fromPosition = 0;
  for (;;) {
    const page = await store.read(domain, { fromPosition, limit: 10_000 });
    events.push(...page.events);
    if (page.events.length === 0 || page.nextPosition === fromPosition) return events;
    fromPosition = page.nextPosition;
  }
}

function comparable(event: StoredEvent) {
  return {
    domain: event.domain,
    aggregateType: event.aggregateType,
    aggregateId: event.aggregateId,
    version: event.version,
    position: event.position,
    generation: event.generation,
    timestamp: event.timestamp,
    type: event.type,
    data: Buffer.from(event.data).toString('hex'),
    metadata: Buffer.from(event.metadata).toString('hex'),
  };
}

/** The two stores hold the same domains with the same events (every field), in the same order. */
export async function expectSameContent(
  actual: EventStore,
  expected: EventStore,
  context: string,
): Promise<void> {
  const domains = expected.domains();
  expect(actual.domains(), context).toEqual(domains);
  for (const domain of domains) {
    const got = (await readAll(actual, domain)).map(comparable);
    const want = (await readAll(expected, domain)).map(comparable);
    expect(got.length, `${context}: events of ${domain}`).toBe(want.length);
    expect(got, `${context}: domain ${domain}`).toEqual(want);
  }
}

/** Digest of every file of a store directory but its LOCK (path → sha256). */
export function digestTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (at: string, prefix: string) => {
    for (const name of readdirSync(at).sort()) {
      const path = join(at, name);
      if (statSync(path).isDirectory()) walk(path, `${prefix}${name}/`);
      else if (`${prefix}${name}` !== 'LOCK')
        out[`${prefix}${name}`] = createHash('sha256').update(readFileSync(path)).digest('hex');
    }
  };
  walk(dir, '');
  return out;
}
