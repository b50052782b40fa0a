import type {
  AppendBatch,
  AppendReport,
  DomainTip,
  GenerationApplier,
  GenerationStamp,
} from '../../storage/types.js';
import type { StorageWriter } from '../../storage/writer.js';
import type { Durability, PutResult } from '../../types.js';

/**
 * The writer thread's store as a cluster's replicas and publishers see it (GenerationApplier): every
 * generation, this node's own and other owners', is committed here with its stamp, one call at a
 * time in call order, and each commit is reported (`onCommitted`, which posts its CommitDelta to the
 * main thread's reader) once it reached the store's durability. Reports are made in commit order:
 * with 'fsync' the overlapped commits settle in order and each report runs in the settle of its own
 * commit; otherwise at once.
 */
export class ReplicatedWriter implements GenerationApplier {
  readonly #storage: StorageWriter;
  readonly #durability: Durability;
  readonly #onCommitted: (report: AppendReport, stamp: GenerationStamp) => void;

  constructor(
    storage: StorageWriter,
    durability: Durability,
    onCommitted: (report: AppendReport, stamp: GenerationStamp) => void,
  ) {
    this.#storage = storage;
    this.#durability = durability;
    this.#onCommitted = onCommitted;
  }

  applyGeneration(batches: readonly AppendBatch[], stamp: GenerationStamp): Promise<AppendReport> {
    if (this.#durability === 'fsync') {
      return this.#storage.appendOverlapped(batches, stamp).then((report) => {
        this.#onCommitted(report, stamp);
        return report;
      });
    }
    try {
      const report = this.#storage.append(batches, this.#durability, stamp);
      this.#onCommitted(report, stamp);
      return Promise.resolve(report);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  version(domain: string, aggregateType: string, id: bigint): number {
    return this.#storage.version(domain, aggregateType, id);
  }

  keyedResult(domain: string, aggregateType: string, id: bigint, key: string): PutResult | undefined {
    return this.#storage.keyedResult(domain, aggregateType, id, key);
  }

  tip(domain: string): DomainTip {
    return this.#storage.tip(domain);
  }
}
