import { parseAggregateId } from './ids.js';
import { validateAggregateType, validateDomain } from './names.js';

/** Validates the (domain, aggregate type, id) of an instance at the boundary; returns the id as a bigint. */
export function validateInstanceAddress(domain: unknown, aggregateType: unknown, id: unknown): bigint {
  validateDomain(domain);
  validateAggregateType(aggregateType);
  return parseAggregateId(id);
}
