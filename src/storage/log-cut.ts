/**
 * A consistent cut of a store's log (StorageWriter.cut): after the commit of `generation`, where
 * each domain's registry and index end and where each aggregate type's data ends. The log below
 * these ends holds exactly the batches of generations ≤ `generation` and never changes again.
 * Plain data: it crosses from the writer thread to the thread that copies it.
 */
export interface LogCut {
  generation: number;
  lastTimestamp: number;
  domains: DomainCut[];
}

export interface DomainCut {
  domain: string;
  registryEnd: number;
  indexEnd: number;
  /** Events of the domain below the cut. */
  nextPosition: number;
  /** Per aggregate type: the segment it appends to and where its data ends in it. */
  dataEnds: { aggregateType: string; segment: number; end: number }[];
}
