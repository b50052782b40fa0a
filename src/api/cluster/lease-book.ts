import type { KV } from '@nats-io/kv';

/**
 * This node's domain leases in the lease bucket (a JetStream KV bucket whose max_age is the lease
 * TTL: nats-server 2.9 has no per-key TTL, so a key expires `ttlMs` after its last write).
 *
 *   take      kv.create(domain)               succeeds only when the key is absent, deleted or expired
 *   renew     kv.update(domain, revision)     compare-and-set: fails once anyone else wrote the key
 *   release   kv.delete(domain, revision)     at close, so that another node takes over at once
 *
 * A lease counts as held locally until `ttlMs × 3/4` after the start of the request that last wrote
 * it: the server's expiry counts from when it stored that write, which is later, so this node stops
 * writing before the key can expire (whatever the clocks of the machines say). Renewals run every
 * `ttlMs / 4`. A failed renewal (the key is gone or someone else's) loses the lease at once.
 */
export interface LeaseRecord {
  node: string;
  /** ms since the epoch at which the node first took it (for status). */
  since: number;
}

interface Held {
  revision: number;
  since: number;
  validUntil: number;
  timer: NodeJS.Timeout;
}

export type LeaseLost = (domain: string, reason: string) => void;

const utf8 = new TextEncoder();

export class LeaseBook {
  readonly #kv: KV;
  readonly #node: string;
  readonly #ttlMs: number;
  readonly #onLost: LeaseLost;
  readonly #held = new Map<string, Held>();
  /** Leases this node took and lost since open (metrics). */
  taken = 0;
  lost = 0;

  constructor(kv: KV, node: string, ttlMs: number, onLost: LeaseLost) {
    this.#kv = kv;
    this.#node = node;
    this.#ttlMs = ttlMs;
    this.#onLost = onLost;
  }

  get ttlMs(): number {
    return this.#ttlMs;
  }

  /** True while this node's lease on `domain` is certainly still valid. */
  holds(domain: string): boolean {
    const held = this.#held.get(domain);
    return held !== undefined && performance.now() < held.validUntil;
  }

  domains(): string[] {
    return [...this.#held.keys()];
  }

  /** Takes the lease when nobody holds it; returns whether this node holds it now. */
  async take(domain: string): Promise<boolean> {
    if (this.holds(domain)) return true;
    const since = Date.now();
    const started = performance.now();
    let revision: number;
    try {
      revision = await this.#kv.create(domain, this.#value(since));
    } catch {
      return false;
    }
    this.#keep(domain, revision, since, started);
    this.taken++;
    return true;
  }

  /** Renews now; false (and the lease is dropped) when the bucket no longer says it is ours. */
  async renew(domain: string): Promise<boolean> {
    const held = this.#held.get(domain);
    if (!held) return false;
    const started = performance.now();
    try {
      const revision = await this.#kv.update(domain, this.#value(held.since), held.revision);
      if (this.#held.get(domain) !== held) return this.holds(domain);
      held.revision = revision;
      held.validUntil = started + (this.#ttlMs * 3) / 4;
      return true;
    } catch (err) {
      if (this.#held.get(domain) !== held) return this.holds(domain);
      // A timeout is not a loss yet: the lease stays held until its local validity ends.
      if (performance.now() < held.validUntil && !/wrong last sequence/i.test(String(err))) return true;
      this.#drop(domain, held, `renewal failed: ${err instanceof Error ? err.message : String(err)}`);
      return false;
    }
  }

  /** Gives a lease up (deleting the key if it is still ours). */
  async release(domain: string): Promise<void> {
    const held = this.#held.get(domain);
    if (!held) return;
    clearInterval(held.timer);
    this.#held.delete(domain);
    try {
      await this.#kv.delete(domain, { previousSeq: held.revision });
    } catch {
      // Someone else wrote it since, or the bucket is unreachable: it expires on its own.
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.domains().map((d) => this.release(d)));
  }

  #value(since: number): Uint8Array {
    return utf8.encode(JSON.stringify({ node: this.#node, since } satisfies LeaseRecord));
  }

  #keep(domain: string, revision: number, since: number, started: number): void {
    const timer = setInterval(() => void this.renew(domain), Math.max(50, this.#ttlMs / 4));
    timer.unref();
    this.#held.set(domain, { revision, since, validUntil: started + (this.#ttlMs * 3) / 4, timer });
  }

  #drop(domain: string, held: Held, reason: string): void {
    clearInterval(held.timer);
    this.#held.delete(domain);
    this.lost++;
    this.#onLost(domain, reason);
  }
}
