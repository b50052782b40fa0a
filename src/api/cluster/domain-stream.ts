import { DiscardPolicy, type JetStreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import type { KV, Kvm } from '@nats-io/kv';
import { isStreamNotFound } from '../../pipeline/cluster/nats-errors.js';
import type { NatsNames } from '../../pipeline/cluster/nats-names.js';

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

/** How long opening a bucket keeps trying while JetStream answers with errors (no quorum yet, a timeout). */
const OPEN_BUCKET_MS = 30_000;

/**
 * Opens a KV bucket, creating it with `options` when it does not exist yet, and reads its TTL (its
 * max_age). Creating one that exists with the same configuration is a no-op, and one that exists
 * with another (another TTL) is used as it is. Anything else (a timeout while a busy cluster creates
 * the bucket's replicated stream, no meta leader yet, a bucket whose stream does not answer its
 * status yet) is tried again until OPEN_BUCKET_MS have passed; then the creation's own error is
 * thrown, not the open's "stream not found" that would hide it.
 */
export async function openBucket(
  kvm: Kvm,
  name: string,
  options: { ttl: number; history: number; replicas: number },
): Promise<{ kv: KV; ttl: number }> {
  const deadline = Date.now() + OPEN_BUCKET_MS;
  for (let attempt = 0; ; attempt++) {
    let firstError: unknown;
    try {
      const kv = await kvm.create(name, options);
      return { kv, ttl: (await kv.status()).ttl || options.ttl };
    } catch (createError) {
      firstError = createError;
    }
    try {
      const kv = await kvm.open(name);
      return { kv, ttl: (await kv.status()).ttl || options.ttl };
    } catch {
      if (Date.now() >= deadline) throw firstError;
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(1_000, 100 * 2 ** attempt)));
  }
}

/** Replicas for new streams and buckets: 3 when the cluster has three or more servers, else 1. */
export function defaultReplicas(serverCount: number): number {
  return serverCount >= 3 ? 3 : 1;
}
