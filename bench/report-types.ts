/** Ratios of one row to the baselines of the same run (>1 means faster than the baseline). */
export interface Ratios {
  vsFloor?: number;
  vsLmdb?: number;
  /** Write rows of the embedded store: to the storage engine alone at the same durability. */
  vsEngine?: number;
}

/** One target of the bench (docs/BENCHMARKS.md, "Targets") and how this run did against it. */
export interface TargetCheck {
  target: string;
  measured: string;
  met: boolean | 'unknown';
}
