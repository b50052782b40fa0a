/**
 * Every case the runner knows, in run order: baselines first, so a partial run still has them.
 * `id` is what the command-line filter matches (any word, as a substring).
 */
export interface CaseSpec {
  id: string;
  module: string;
  variant: string;
}

export const CASE_SPECS: readonly CaseSpec[] = [
  { id: 'floor', module: 'floor', variant: 'write' },
  { id: 'lmdb-write', module: 'lmdb', variant: 'write' },
  { id: 'storage-engine-fsync', module: 'storage-engine', variant: 'fsync' },
  { id: 'storage-engine-none', module: 'storage-engine', variant: 'none' },
  { id: 'reads-lmdb', module: 'lmdb', variant: 'reads' },
  { id: 'reads-storage-engine', module: 'store-reads', variant: 'engine' },
];

/** Specs whose id contains any of the filter words (all of them when there are none). */
export function selectSpecs(filters: readonly string[]): CaseSpec[] {
  if (filters.length === 0) return [...CASE_SPECS];
  const words = filters.map((filter) => filter.toLowerCase());
  return CASE_SPECS.filter((spec) => words.some((word) => spec.id.toLowerCase().includes(word)));
}
