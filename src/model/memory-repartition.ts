import type { StoredEvent } from '../types.js';
import type { EventStore } from './event-store.js';
import { MemoryEventStore } from './memory-store.js';
import {
  instanceKey,
  type RepartitionPlan,
  type ResolvedPlan,
  resolveRepartitionPlan,
  type StoreOutline,
} from './repartition-plan.js';

/**
 * The reference of the repartition tool (src/storage/repartition.ts): the store it must write,
 * computed the obvious way. Every event of the source that the plan keeps goes to its target domain;
 * a target domain's events are ordered by (generation, source domain name, source position), take
 * positions from 0 in that order, and keep their aggregate type, id, version, generation,
 * timestamp, type, data and metadata.
 */
export async function repartitionModel(source: EventStore, plan: RepartitionPlan): Promise<MemoryEventStore> {
  const events = new Map<string, StoredEvent[]>();
  for (const domain of source.domains()) events.set(domain, await readWholeDomain(source, domain));
  const resolved = resolveRepartitionPlan(plan, outlineOf(events, plan));
  return applyPlan(events, resolved);
}

/** What the plan may name, from every event of every domain. */
export function outlineOf(
  events: ReadonlyMap<string, readonly StoredEvent[]>,
  plan: RepartitionPlan,
): StoreOutline {
  const wanted = new Set(plan.dropInstances.map((ref) => instanceKey(ref.domain, ref.aggregateType, ref.id)));
  const domains = new Map<string, Set<string>>();
  const instances = new Set<string>();
  for (const [domain, list] of events) {
    if (list.length === 0) continue;
    const types = new Set<string>();
    for (const event of list) {
      types.add(event.aggregateType);
      const key = instanceKey(domain, event.aggregateType, event.aggregateId);
      if (wanted.has(key)) instances.add(key);
    }
    domains.set(domain, types);
  }
  return { domains, instances };
}

function applyPlan(
  events: ReadonlyMap<string, readonly StoredEvent[]>,
  plan: ResolvedPlan,
): MemoryEventStore {
  const kept: { target: string; event: StoredEvent }[] = [];
  for (const [domain, list] of events) {
    for (const event of list) {
      const target = plan.route(domain, event.aggregateType, event.aggregateId);
      if (target !== undefined) kept.push({ target, event });
    }
  }
  kept.sort(
    (a, b) =>
      a.event.generation - b.event.generation ||
      (a.event.domain < b.event.domain ? -1 : a.event.domain > b.event.domain ? 1 : 0) ||
      a.event.position - b.event.position,
  );
  const target = new MemoryEventStore();
  for (const { target: domain, event } of kept) {
    target.putSync(
      domain,
      event.aggregateType,
      event.aggregateId,
      [{ type: event.type, data: event.data, metadata: event.metadata }],
      { expectedVersion: event.version - 1 },
      { generation: event.generation, timestamp: event.timestamp },
    );
  }
  return target;
}

async function readWholeDomain(store: EventStore, domain: string): Promise<StoredEvent[]> {
  const all: StoredEvent[] = [];
  let fromPosition = 0;
  for (;;) {
    const page = await store.read(domain, { fromPosition, limit: 10_000 });
    all.push(...page.events);
    if (page.events.length === 0 || page.nextPosition === fromPosition) return all;
    fromPosition = page.nextPosition;
  }
}
