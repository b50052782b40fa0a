import { DiscardPolicy, type JetStreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import type { KV, Kvm } from '@nats-io/kv';
import { isStreamNotFound } from './nats-errors.js';
import type { NatsNames } from './nats-names.js';

/** JetStream's duplicate window for domain streams: an unanswered publish may be repeated within it. */
const DUPLICATE_WINDOW_NS = 120 * 1_000_000_000;

/**
 * Creates a domain's stream unless it exists (file storage, `replicas` replicas, the duplicate
 * window the owner's repeated publishes rely on); returns its last sequence.
 */
export async function ensureDomainStream(
  jsm: JetStreamManager,
  names: NatsNames,
  domain: string,
  replicas: number,
): Promise<number> {
  try {
    return (await jsm.streams.info(names.stream(domain))).state.last_seq;
  } catch (err) {
    if (!isStreamNotFound(err)) throw err;
  }
  try {
    const info = await jsm.streams.add({
      name: names.stream(domain),
      subjects: [names.events(domain)],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.New,
      num_replicas: replicas,
      duplicate_window: DUPLICATE_WINDOW_NS,
    });
    return info.state.last_seq;
  } catch (err) {
    // Another node may have created it at the same moment.
    const info = await jsm.streams.info(names.stream(domain)).catch(() => {
      throw err;
    });
    return info.state.last_seq;
  }
}

/** Opens a KV bucket, creating it with `options` when it does not exist yet. */
export async function openBucket(
  kvm: Kvm,
  name: string,
  options: { ttl: number; history: number; replicas: number },
): Promise<KV> {
  try {
    // Creating a bucket that exists with the same configuration is a no-op.
    return await kvm.create(name, options);
  } catch (err) {
    // It exists with another configuration (another TTL): use it as it is.
    const kv = await kvm.open(name);
    await kv.status().catch(() => {
      throw err;
    });
    return kv;
  }
}

/** Replicas for new streams and buckets: 3 when the cluster has three or more servers, else 1. */
export function defaultReplicas(serverCount: number): number {
  return serverCount >= 3 ? 3 : 1;
}
