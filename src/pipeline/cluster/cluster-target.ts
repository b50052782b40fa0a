import { RingStoreError } from '../../errors.js';
import type { LogCut } from '../../storage/log-cut.js';
import type { AppendBatch, AppendOutcome, AppendReport } from '../../storage/types.js';
import type { StorageWriter } from '../../storage/writer.js';
import type { Durability } from '../../types.js';
import type { AppendTarget } from '../writer-loop.js';

/** What the target needs of a domain's writer (DomainPublisher). */
export interface DomainCommitter {
  readonly active: boolean;
  /** One outcome per batch, in order. */
  commit(batches: readonly AppendBatch[]): Promise<AppendOutcome[]>;
}

/**
 * The writer loop's AppendTarget in cluster mode (docs/CLUSTER.md): a commit of the ring is grouped
 * by domain, and each domain's batches go to its DomainPublisher, which commits them as generation
 * messages on the domain's JetStream stream and applies each acknowledged one to this node's store.
 * A domain this node does not write (no publisher, or one that stepped down) fails its batches with
 * NOT_OWNER: never published, so the facade routes them again (to the new owner).
 *
 * A commit's domains are published at once, and the next commit's messages may be published
 * while this one's wait for their acknowledgements (each publisher decides commits in the order it
 * was given them, counting its messages in flight; the writer loop has at most two commits out). The store's commit reports reach the main
 * thread through ReplicatedWriter, so the report returned here carries outcomes only (an empty
 * delta, no counters): the loop's commit message then settles the records. `afterCommit` runs
 * before a commit's report is returned (ClusterWriterNode reports publishers that stepped down).
 */
export class ClusterTarget implements AppendTarget {
  readonly commitsAsync = true;
  readonly #publisher: (domain: string) => DomainCommitter | undefined;
  readonly #storage: Pick<StorageWriter, 'cut' | 'cacheStats' | 'failed' | 'writeZerosAhead'>;
  readonly #durability: Durability;
  readonly #afterCommit: () => void;

  constructor(
    publisher: (domain: string) => DomainCommitter | undefined,
    storage: Pick<StorageWriter, 'cut' | 'cacheStats' | 'failed' | 'writeZerosAhead'>,
    durability: Durability,
    afterCommit: () => void,
  ) {
    this.#afterCommit = afterCommit;
    this.#publisher = publisher;
    this.#storage = storage;
    this.#durability = durability;
  }

  /**
   * Once the store failed (an apply after a PubAck failed: the stream holds what this node could
   * not apply), the loop fails the whole store, which then takes no lease and answers no put.
   */
  get failure(): RingStoreError | undefined {
    return this.#storage.failed
      ? new RingStoreError('STORE_FAILED', "this node's store failed to apply a message of a domain stream")
      : undefined;
  }

  append(): AppendReport {
    throw new RingStoreError('INTERNAL', 'a cluster commit waits for JetStream: use appendOverlapped');
  }

  appendOverlapped(batches: readonly AppendBatch[]): Promise<AppendReport> {
    // The loop reuses its array for the next scan: #commit takes what it needs before returning.
    return this.#commit(batches);
  }

  cut(): LogCut {
    return this.#storage.cut();
  }

  /** This node's files, as on a single node: zeros ahead while the loop has nothing to stage. */
  writeZerosAhead(): boolean {
    return this.#storage.writeZerosAhead();
  }

  async #commit(batches: readonly AppendBatch[]): Promise<AppendReport> {
    const byDomain = new Map<string, number[]>();
    for (let i = 0; i < batches.length; i++) {
      const domain = batches[i]!.domain;
      const indices = byDomain.get(domain);
      if (indices) indices.push(i);
      else byDomain.set(domain, [i]);
    }
    const outcomes: AppendOutcome[] = new Array(batches.length);
    // Each domain's batches are handed to its publisher now, synchronously: publishers decide the
    // commits they are given in the order they were given them.
    const commits = [...byDomain].map(([domain, indices]) => {
      const publisher = this.#publisher(domain);
      if (!publisher?.active) {
        const error = new RingStoreError('NOT_OWNER', `domain ${domain}: this node does not write it`, {
          domain,
        }).toWire();
        for (const i of indices) outcomes[i] = { ok: false, error };
        return Promise.resolve();
      }
      return publisher.commit(indices.map((i) => batches[i]!)).then((results) => {
        for (let k = 0; k < indices.length; k++) outcomes[indices[k]!] = results[k]!;
      });
    });
    await Promise.all(commits);
    // Before the loop's commit message fails any batch: the main thread learns of a step-down first.
    this.#afterCommit();
    return {
      outcomes,
      delta: { generation: 0, domains: [] },
      durability: this.#durability,
      fsyncs: 0,
      syncSeconds: [],
      appendedEvents: 0,
      appendedBytes: 0,
      generations: 0,
      caches: this.#storage.cacheStats(),
    };
  }
}
