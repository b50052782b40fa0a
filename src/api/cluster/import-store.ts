import { randomUUID } from 'node:crypto';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { RingStoreError } from '../../errors.js';
import { eventCrc } from '../../model/events.js';
import { LIMITS } from '../../model/limits.js';
import { describe } from '../../pipeline/cluster/nats-errors.js';
import { NatsNames } from '../../pipeline/cluster/nats-names.js';
import { natsConnectOptions } from '../../pipeline/cluster/nats-servers.js';
import { eventListOf } from '../../storage/event-list.js';
import { encodeGenerationMessage } from '../../storage/generation-message.js';
import { StorageEngine } from '../../storage/storage-engine.js';
import type { AppendBatch, BatchHead } from '../../storage/types.js';
import type { StoredEvent } from '../../types.js';
import { defaultReplicas, ensureDomainStream, openBucket } from './domain-stream.js';
import { LeaseBook } from './lease-book.js';

export interface ImportOptions {
  servers: readonly string[];
  namespace?: string;
  /** Replicas of the domain streams created (default 3 with three or more servers, else 1). */
  replicas?: number;
  /** Only these domains (default every domain of the store). */
  domains?: readonly string[];
  /** Lease TTL when the lease bucket does not exist yet (default 10,000 ms). */
  leaseTtlMs?: number;
  onProgress?: (domain: string, events: number) => void;
}

export interface ImportedDomain {
  domain: string;
  batches: number;
  events: number;
  /** JetStream messages published (generations in the cluster). */
  messages: number;
}

const HEADS_PER_PAGE = 1000;
const HEADER_ALLOWANCE = 4096;

/**
 * Moves a single-node store into a cluster (docs/CLUSTER.md, "From a single-node store"): each
 * domain's batches, in position order, published into its (new or empty) domain stream while this
 * tool holds the domain's lease, with the same fence an owner uses. A source generation becomes one
 * message (several when it is larger than the server's max_payload). Positions, versions,
 * idempotency keys and timestamps are kept; generations are renumbered by stream sequence. Cluster
 * nodes apply the messages as they arrive, as any other.
 *
 * The source directory is opened (and recovered) like any store, so it must not be in use.
 */
export async function importStore(sourceDir: string, options: ImportOptions): Promise<ImportedDomain[]> {
  const names = new NatsNames(options.namespace);
  let nc: NatsConnection;
  // Checked before connecting: a server list that is not valid is INVALID_OPTION, not unreachable.
  const connection = natsConnectOptions(options.servers);
  try {
    nc = await connect({ ...connection, timeout: 5000 });
  } catch (err) {
    throw new RingStoreError('CLUSTER_UNAVAILABLE', `cannot connect to NATS: ${describe(err)}`);
  }
  const source = StorageEngine.open(sourceDir, { durability: 'none' });
  let leases: LeaseBook | undefined;
  try {
    const jsm = await jetstreamManager(nc, { timeout: 5000 });
    const js = jetstream(nc, { timeout: 10_000 });
    const servers = Math.max(1, nc.info?.connect_urls?.length ?? 1);
    const replicas = options.replicas ?? defaultReplicas(servers);
    const { kv, ttl } = await openBucket(new Kvm(js), names.leaseBucket, {
      ttl: options.leaseTtlMs ?? 10_000,
      history: 1,
      replicas: Math.min(replicas, defaultReplicas(servers)),
    });
    let lost: string | undefined;
    const book = new LeaseBook(kv, `import-${randomUUID().slice(0, 8)}`, ttl, (d, why) => {
      lost = `${d}: ${why}`;
    });
    leases = book;
    const maxBytes = (nc.info?.max_payload ?? 1024 * 1024) - HEADER_ALLOWANCE;
    const wanted = options.domains ?? source.domains();
    const imported: ImportedDomain[] = [];
    for (const domain of wanted) {
      if (!(await book.take(domain))) {
        throw new RingStoreError(
          'INVALID_OPTION',
          `domain ${domain}: a cluster node holds its lease; import before any node writes it`,
          {
            option: 'domains',
          },
        );
      }
      let last = await ensureDomainStream(jsm, names, domain, replicas);
      if (last > 0) {
        throw new RingStoreError(
          'INVALID_OPTION',
          `domain ${domain}: its stream already holds ${last} messages; import into empty domains only`,
          {
            option: 'domains',
          },
        );
      }
      nc.publish(names.domains, new TextEncoder().encode(domain));
      const report: ImportedDomain = { domain, batches: 0, events: 0, messages: 0 };
      const publish = async (batches: AppendBatch[], timestamp: number) => {
        if (lost !== undefined) throw new RingStoreError('NOT_OWNER', `the import lost its lease (${lost})`);
        const id = randomUUID();
        const bytes = encodeGenerationMessage({ domain, node: 'import', id, timestamp, batches });
        await js.publish(names.events(domain), bytes, { msgID: id, expect: { lastSequence: last } });
        last++;
        report.messages++;
      };
      for (let position = 0; ; ) {
        const heads = source.batches(domain, position, HEADS_PER_PAGE);
        if (heads.length === 0) break;
        const page = await pageBatches(source, domain, heads);
        let group: AppendBatch[] = [];
        let groupBytes = 0;
        let groupHead: BatchHead | undefined;
        for (let i = 0; i < page.length; i++) {
          const head = heads[i]!;
          const batch = page[i]!;
          const bytes = batchBytes(batch);
          if (bytes > maxBytes) {
            throw new RingStoreError(
              'MESSAGE_TOO_LARGE',
              `domain ${domain}: the batch at position ${head.firstPosition} (${bytes} bytes) does not fit in one NATS message; raise max_payload`,
              { bytes, maxPayload: maxBytes },
            );
          }
          if (groupHead && (head.generation !== groupHead.generation || groupBytes + bytes > maxBytes)) {
            await publish(group, groupHead.timestamp);
            group = [];
            groupBytes = 0;
          }
          if (group.length === 0) groupHead = head;
          group.push(batch);
          groupBytes += bytes;
          report.batches++;
          report.events += head.eventCount;
        }
        if (groupHead && group.length > 0) await publish(group, groupHead.timestamp);
        const lastHead = heads[heads.length - 1]!;
        position = lastHead.firstPosition + lastHead.eventCount;
        options.onProgress?.(domain, report.events);
      }
      await book.release(domain);
      imported.push(report);
    }
    return imported;
  } catch (err) {
    if (err instanceof RingStoreError) throw err;
    throw new RingStoreError('CLUSTER_UNAVAILABLE', `the import stopped: ${describe(err)}`);
  } finally {
    await leases?.close();
    await source.close();
    await nc.close();
  }
}

/**
 * The batches of `heads` with their events (read in pages of at most maxReadLimit events), each
 * naming the exact version it extends and its idempotency key, as an owner's message does.
 */
async function pageBatches(
  source: StorageEngine,
  domain: string,
  heads: readonly BatchHead[],
): Promise<AppendBatch[]> {
  const first = heads[0]!.firstPosition;
  const lastHead = heads[heads.length - 1]!;
  const end = lastHead.firstPosition + lastHead.eventCount;
  const events: StoredEvent[] = [];
  for (let from = first; from < end; ) {
    const read = await source.read(domain, {
      fromPosition: from,
      limit: Math.min(LIMITS.maxReadLimit, end - from),
    });
    events.push(...read.events);
    if (read.events.length === 0) break;
    from = read.nextPosition;
  }
  if (events.length !== end - first) {
    throw new RingStoreError(
      'CORRUPT_DATA',
      `domain ${domain}: positions ${first}…${end - 1} read back incomplete`,
    );
  }
  return heads.map((head) => {
    const slice = events.slice(head.firstPosition - first, head.firstPosition - first + head.eventCount);
    return {
      domain,
      aggregateType: head.aggregateType,
      aggregateId: head.aggregateId,
      expectedVersion: head.firstVersion - 1,
      idempotencyKey: head.idempotencyKey,
      events: slice.map((e) => ({ type: e.type, data: e.data, metadata: e.metadata, crc: eventCrc(e) })),
    };
  });
}

function batchBytes(batch: AppendBatch): number {
  let bytes = 256 + batch.aggregateType.length + (batch.idempotencyKey?.length ?? 0) * 3;
  const events = eventListOf(batch.events);
  for (let i = 0; i < events.length; i++) {
    bytes += events.dataBytes(i) + events.metadataBytes(i) + events.type(i).length + 40;
  }
  return bytes;
}
