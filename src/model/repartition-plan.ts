import { RingStoreError } from '../errors.js';
import { parseAggregateId } from './ids.js';
import { STORAGE_NAME_PATTERN } from './names.js';

/**
 * The plan of an offline repartition (docs/OPERATIONS.md, "Repartition"): which domains are
 * renamed, which aggregate types move to another domain (a domain is split by moving some of its
 * types out, and merged into another by renaming it to that one), and which domains, aggregate
 * types and instances are dropped (erasure requests). Every name in it is a name of the source
 * store. Its JSON form:
 *
 *   {
 *     "renameDomains": { "shop": "retail" },
 *     "moveAggregateTypes": [{ "domain": "shop", "aggregateType": "invoice", "to": "billing" }],
 *     "drop": {
 *       "domains": ["scratch"],
 *       "aggregateTypes": [{ "domain": "shop", "aggregateType": "cart" }],
 *       "instances": [{ "domain": "crm", "aggregateType": "person", "id": "17" }]
 *     }
 *   }
 *
 * Every key is optional; an empty plan copies the store as it is. The route of a batch of
 * (domain d, aggregate type t, id i): dropped when d, (d, t) or (d, t, i) is dropped; otherwise to
 * the domain its move names, else to d's new name, else to d. Aggregate types keep their names.
 */
export interface RepartitionPlan {
  renameDomains: ReadonlyMap<string, string>;
  moveAggregateTypes: readonly AggregateTypeMove[];
  dropDomains: ReadonlySet<string>;
  dropAggregateTypes: readonly AggregateTypeRef[];
  dropInstances: readonly InstanceRef[];
}

export interface AggregateTypeRef {
  domain: string;
  aggregateType: string;
}

export interface AggregateTypeMove extends AggregateTypeRef {
  to: string;
}

export interface InstanceRef extends AggregateTypeRef {
  id: bigint;
}

/** What a plan is checked against: the source store's contents that it may name. */
export interface StoreOutline {
  /** Per domain that holds events, its aggregate types that hold events. */
  domains: ReadonlyMap<string, ReadonlySet<string>>;
  /** Of the instances the plan drops, those that hold events (keys: instanceKey). */
  instances: ReadonlySet<string>;
}

/** A plan checked against a store: where each batch goes. */
export interface ResolvedPlan {
  /** The target domain of a batch, or undefined when it is dropped. */
  route(domain: string, aggregateType: string, id: bigint): string | undefined;
  /** The target domain of an aggregate type that is kept (its instances may still be dropped). */
  targetOf(domain: string, aggregateType: string): string | undefined;
  /** Target domains, sorted, each with the source domains that feed it (sorted). */
  targets: ReadonlyMap<string, readonly string[]>;
}

export function instanceKey(domain: string, aggregateType: string, id: bigint): string {
  return `${domain}/${aggregateType}/${id}`;
}

function invalidPlan(reason: string): RingStoreError {
  return new RingStoreError('INVALID_PLAN', `the repartition plan ${reason}`, { reason });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function onlyKeys(value: Record<string, unknown>, keys: readonly string[], where: string): void {
  for (const key of Object.keys(value)) {
    if (!keys.includes(key)) throw invalidPlan(`has an unknown key ${JSON.stringify(key)} in ${where}`);
  }
}

function name(value: unknown, where: string): string {
  if (typeof value !== 'string' || !STORAGE_NAME_PATTERN.test(value)) {
    throw invalidPlan(`has ${JSON.stringify(value)} as ${where}: names match ${STORAGE_NAME_PATTERN}`);
  }
  return value;
}

function list(value: unknown, where: string): unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalidPlan(`needs an array as ${where}`);
  return value;
}

function typeRef(
  value: unknown,
  where: string,
  keys: readonly string[],
): Record<string, unknown> & AggregateTypeRef {
  if (!isObject(value)) throw invalidPlan(`needs objects in ${where}`);
  onlyKeys(value, keys, where);
  return {
    ...value,
    domain: name(value.domain, `a domain in ${where}`),
    aggregateType: name(value.aggregateType, `an aggregate type in ${where}`),
  };
}

/** Checks the form of a plan (parsed JSON); INVALID_PLAN names what is wrong. */
export function parseRepartitionPlan(json: unknown): RepartitionPlan {
  if (!isObject(json)) throw invalidPlan('must be a JSON object');
  onlyKeys(json, ['renameDomains', 'moveAggregateTypes', 'drop'], 'the plan');
  const renameDomains = new Map<string, string>();
  if (json.renameDomains !== undefined) {
    if (!isObject(json.renameDomains)) throw invalidPlan('needs an object as renameDomains');
    for (const [from, to] of Object.entries(json.renameDomains)) {
      name(from, 'a domain renamed');
      const newName = name(to, `the new name of domain ${from}`);
      if (newName === from) throw invalidPlan(`renames domain ${from} to itself`);
      renameDomains.set(from, newName);
    }
  }
  const moves: AggregateTypeMove[] = [];
  const moved = new Set<string>();
  for (const entry of list(json.moveAggregateTypes, 'moveAggregateTypes')) {
    const ref = typeRef(entry, 'moveAggregateTypes', ['domain', 'aggregateType', 'to']);
    const key = `${ref.domain}/${ref.aggregateType}`;
    if (moved.has(key)) throw invalidPlan(`moves aggregate type ${key} twice`);
    moved.add(key);
    moves.push({
      domain: ref.domain,
      aggregateType: ref.aggregateType,
      to: name(ref.to, `the target of ${key}`),
    });
  }
  const drop = json.drop ?? {};
  if (!isObject(drop)) throw invalidPlan('needs an object as drop');
  onlyKeys(drop, ['domains', 'aggregateTypes', 'instances'], 'drop');
  const dropDomains = new Set(
    list(drop.domains, 'drop.domains').map((d) => name(d, 'a domain in drop.domains')),
  );
  const dropAggregateTypes = list(drop.aggregateTypes, 'drop.aggregateTypes').map((entry) => {
    const ref = typeRef(entry, 'drop.aggregateTypes', ['domain', 'aggregateType']);
    return { domain: ref.domain, aggregateType: ref.aggregateType };
  });
  const dropInstances = list(drop.instances, 'drop.instances').map((entry) => {
    const ref = typeRef(entry, 'drop.instances', ['domain', 'aggregateType', 'id']);
    let id: bigint;
    try {
      id = parseAggregateId(ref.id);
    } catch {
      throw invalidPlan(`has ${JSON.stringify(ref.id)} as an id in drop.instances: ids are 1 … 2^64-1`);
    }
    return { domain: ref.domain, aggregateType: ref.aggregateType, id };
  });
  return { renameDomains, moveAggregateTypes: moves, dropDomains, dropAggregateTypes, dropInstances };
}

/**
 * Checks a plan against the store it applies to and resolves it. Refused (INVALID_PLAN): a name the
 * store does not hold (a typo must not pass as a finished erasure), a rename or move of something
 * the plan drops, a drop inside something it drops already, a move into the domain the type goes to
 * anyway, and two aggregate types of the same name that would land in one domain (their instances'
 * versions would mix).
 */
export function resolveRepartitionPlan(plan: RepartitionPlan, outline: StoreOutline): ResolvedPlan {
  const typesOf = (domain: string, what: string) => {
    const types = outline.domains.get(domain);
    if (!types) throw invalidPlan(`${what} domain ${domain}, which holds no events`);
    return types;
  };
  for (const domain of plan.dropDomains) typesOf(domain, 'drops');
  for (const [from] of plan.renameDomains) {
    typesOf(from, 'renames');
    if (plan.dropDomains.has(from)) throw invalidPlan(`renames domain ${from}, which it drops`);
  }
  const droppedTypes = new Set<string>();
  for (const ref of plan.dropAggregateTypes) {
    const key = `${ref.domain}/${ref.aggregateType}`;
    if (plan.dropDomains.has(ref.domain)) throw invalidPlan(`drops ${key}, whose domain it drops already`);
    if (!typesOf(ref.domain, 'drops an aggregate type of').has(ref.aggregateType)) {
      throw invalidPlan(`drops aggregate type ${key}, which holds no events`);
    }
    droppedTypes.add(key);
  }
  const moves = new Map<string, string>();
  for (const move of plan.moveAggregateTypes) {
    const key = `${move.domain}/${move.aggregateType}`;
    if (!typesOf(move.domain, 'moves an aggregate type of').has(move.aggregateType)) {
      throw invalidPlan(`moves aggregate type ${key}, which holds no events`);
    }
    if (plan.dropDomains.has(move.domain) || droppedTypes.has(key))
      throw invalidPlan(`moves ${key}, which it drops`);
    if (move.to === (plan.renameDomains.get(move.domain) ?? move.domain)) {
      throw invalidPlan(`moves ${key} into domain ${move.to}, where it goes anyway`);
    }
    moves.set(key, move.to);
  }
  const droppedInstances = new Set<string>();
  for (const ref of plan.dropInstances) {
    const key = instanceKey(ref.domain, ref.aggregateType, ref.id);
    if (plan.dropDomains.has(ref.domain) || droppedTypes.has(`${ref.domain}/${ref.aggregateType}`)) {
      throw invalidPlan(`drops instance ${key}, which it drops already with its domain or aggregate type`);
    }
    if (!outline.instances.has(key)) throw invalidPlan(`drops instance ${key}, which holds no events`);
    droppedInstances.add(key);
  }
  const targetOf = (domain: string, aggregateType: string): string | undefined => {
    if (plan.dropDomains.has(domain)) return undefined;
    const key = `${domain}/${aggregateType}`;
    if (droppedTypes.has(key)) return undefined;
    return moves.get(key) ?? plan.renameDomains.get(domain) ?? domain;
  };
  const landing = new Map<string, string>();
  const targets = new Map<string, Set<string>>();
  for (const domain of [...outline.domains.keys()].sort()) {
    for (const aggregateType of [...outline.domains.get(domain)!].sort()) {
      const target = targetOf(domain, aggregateType);
      if (target === undefined) continue;
      const at = `${target}/${aggregateType}`;
      const other = landing.get(at);
      if (other !== undefined) {
        throw invalidPlan(`puts ${other}/${aggregateType} and ${domain}/${aggregateType} both into ${at}`);
      }
      landing.set(at, domain);
      if (!targets.has(target)) targets.set(target, new Set());
      targets.get(target)!.add(domain);
    }
  }
  const sortedTargets = new Map<string, readonly string[]>();
  for (const target of [...targets.keys()].sort())
    sortedTargets.set(target, [...targets.get(target)!].sort());
  return {
    route: (domain, aggregateType, id) =>
      droppedInstances.size > 0 && droppedInstances.has(instanceKey(domain, aggregateType, id))
        ? undefined
        : targetOf(domain, aggregateType),
    targetOf,
    targets: sortedTargets,
  };
}
