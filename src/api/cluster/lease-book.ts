import { randomUUID } from 'node:crypto';
import type { KV } from '@nats-io/kv';

/**
 * This node's domain leases in the lease bucket (a JetStream KV bucket whose max_age is the lease
 * TTL: nats-server 2.9 has no per-key TTL, so a key expires `ttlMs` after its last write).
 *
 *   take      kv.create(domain)               succeeds only when the key is absent, deleted or expired,
 *             or kv.update(domain, revision)   over a lease this book gave up whose key is still there
 *   renew     kv.update(domain, revision)     compare-and-set: fails once anyone else wrote the key
 *   release   kv.delete(domain, revision)     at close, so that another node takes over at once
 *
 * A lease counts as held locally until `ttlMs × 3/4` after the start of the request that last wrote
 * it: the server's expiry counts from when it stored that write, which is later, so this node stops
 * writing before the key can expire (whatever the clocks of the machines say). Renewals run every
 * `ttlMs / 4`, one at a time per lease: a renewal asked for while one is in progress shares it.
 *
 * Each take writes a new random `lease` token into the value, kept by every renewal. When a
 * compare-and-set fails with a revision this node did not see (its own earlier write whose answer
 * was lost, e.g. a timed-out renewal that the server did store), the key is read again: when it
 * still holds this node's id and this take's token, nobody else has written it since this node's
 * last write, and the renewal is retried against the revision read. Otherwise (the key is
 * gone or someone else's) the lease is lost at once. The read only chooses the revision to
 * compare against: the validity is extended only by a compare-and-set that succeeded, so a stale
 * read can cost a renewal but never makes this node believe it holds someone else's lease.
 *
 * A lease given up (released, or dropped when its validity ran out undecided) whose key could not
 * be deleted (the cluster did not answer) would keep every node out until it expires, this one
 * too; so would a take whose write went unanswered and could not be read back. The book remembers
 * such takes (the last few per domain), and a later take finding the key still holding one of them
 * writes over it by compare-and-set: nobody else wrote the key since, and this book does not write
 * under the old take, so that is as safe as having kept the lease. A lease of another book (another
 * process with the same node id) is never taken this way.
 */
export interface LeaseRecord {
  node: string;
  /** ms since the epoch at which the node first took it (for status). */
  since: number;
}

/** One take of a lease: when it was taken and its random token (kept by renewals). */
interface Take {
  since: number;
  token: string;
}

/** The value stored: the record and the token of the take that wrote it (kept by renewals). */
interface StoredLease extends LeaseRecord {
  lease: string;
}

interface Held {
  revision: number;
  since: number;
  token: string;
  validUntil: number;
  timer: NodeJS.Timeout;
  /** The renewal in progress; callers of renew() meanwhile share it. */
  renewing?: Promise<boolean>;
}

export type LeaseLost = (domain: string, reason: string) => void;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();
/** Compare-and-sets one renewal tries (each after re-reading the key) before leaving it undecided. */
const MAX_RENEW_ATTEMPTS = 3;
/** Takes given up (or of unknown outcome) remembered per domain for a re-take; the oldest go first. */
const MAX_GIVEN_UP = 4;

/** What a re-read of the key says about this node's lease. */
type Reread = { mine: true; revision: number } | { mine: false; reason: string } | { unknown: string };

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The compare-and-set failed: the key's last revision is not the one given. */
function isWrongRevision(err: unknown): boolean {
  return /wrong last sequence/i.test(describe(err));
}

export class LeaseBook {
  readonly #kv: KV;
  readonly #node: string;
  readonly #ttlMs: number;
  readonly #onLost: LeaseLost;
  readonly #held = new Map<string, Held>();
  /**
   * The takes this book gave up on each domain, or wrote without learning whether they were
   * stored, newest last: the key may still hold one of them.
   */
  readonly #givenUp = new Map<string, Take[]>();
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
    const token = randomUUID();
    const started = performance.now();
    let revision: number;
    try {
      revision = await this.#kv.create(domain, this.#value(since, token));
    } catch (err) {
      if (isWrongRevision(err)) {
        const retaken = await this.#retake(domain, since, token);
        if (retaken === undefined) return false;
        revision = retaken;
      } else {
        // No answer: the create may have been stored. The token is new, so the key holding it
        // means this request wrote it; it was written after `started`.
        const reread = await this.#reread(domain, [{ since, token }]);
        if ('unknown' in reread) this.#giveUp(domain, { since, token });
        if (!('mine' in reread) || !reread.mine) return false;
        revision = reread.revision;
      }
    }
    if (this.#held.has(domain)) {
      // Another take of this domain won meanwhile (both cannot have created the key).
      return this.holds(domain);
    }
    this.#keep(domain, revision, since, token, started);
    this.taken++;
    return true;
  }

  /**
   * Renews now; false (and the lease is dropped) when the bucket no longer says it is ours. One
   * renewal runs at a time per lease: a call while one is in progress gets its result.
   */
  renew(domain: string): Promise<boolean> {
    const held = this.#held.get(domain);
    if (!held) return Promise.resolve(false);
    if (held.renewing) return held.renewing;
    const renewing = this.#renew(domain, held).finally(() => {
      if (held.renewing === renewing) held.renewing = undefined;
    });
    held.renewing = renewing;
    return renewing;
  }

  /** Gives a lease up (deleting the key if it is still ours). */
  async release(domain: string): Promise<void> {
    const held = this.#held.get(domain);
    if (!held) return;
    clearInterval(held.timer);
    this.#held.delete(domain);
    this.#giveUp(domain, held);
    try {
      await this.#kv.delete(domain, { previousSeq: held.revision });
    } catch (err) {
      if (!isWrongRevision(err)) return; // unreachable: the key expires on its own
      // A write of ours whose answer was lost (or a renewal still in flight) moved the revision.
      const reread = await this.#reread(domain, [held]);
      if (!('mine' in reread) || !reread.mine) return; // someone else's now, or gone
      await this.#kv.delete(domain, { previousSeq: reread.revision }).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.domains().map((d) => this.release(d)));
  }

  async #renew(domain: string, held: Held): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      const tried = held.revision;
      try {
        const revision = await this.#kv.update(domain, this.#value(held.since, held.token), tried);
        held.revision = revision;
        if (this.#held.get(domain) !== held) return this.holds(domain);
        held.validUntil = Math.max(held.validUntil, started + (this.#ttlMs * 3) / 4);
        return true;
      } catch (err) {
        if (this.#held.get(domain) !== held) return this.holds(domain);
        if (!isWrongRevision(err)) return this.#notYetLost(domain, held, describe(err));
        // Someone wrote the key since the revision this node knows: maybe this node itself (a
        // renewal that timed out here but was stored). Read it again.
        const found = await this.#reread(domain, [held]);
        if (this.#held.get(domain) !== held) return this.holds(domain);
        if ('unknown' in found) return this.#notYetLost(domain, held, `${describe(err)}; ${found.unknown}`);
        if (!found.mine) {
          this.#drop(domain, held, `renewal failed: ${found.reason}`);
          return false;
        }
        if (found.revision === tried || attempt >= MAX_RENEW_ATTEMPTS) {
          // The read disagrees with the compare-and-set (a replica behind the leader): undecided.
          return this.#notYetLost(
            domain,
            held,
            `${describe(err)}; the lease read back at revision ${found.revision}`,
          );
        }
        // Still this take's value, at another revision: only this node wrote it. Compare against
        // that revision now (validity is extended only by that update succeeding).
        held.revision = found.revision;
      }
    }
  }

  /**
   * A renewal neither succeeded nor proved the lease lost (no answer, or answers that disagree):
   * the lease stays held until its local validity ends, and the next renewal tries again.
   */
  #notYetLost(domain: string, held: Held, why: string): boolean {
    if (performance.now() < held.validUntil) return true;
    this.#drop(domain, held, `renewal failed: ${why}`);
    return false;
  }

  /**
   * The key exists: when it still holds a take this book gave up on the domain, writes this take
   * over it (compare-and-set at the revision read) and returns the new revision.
   */
  async #retake(domain: string, since: number, token: string): Promise<number | undefined> {
    const earlier = this.#givenUp.get(domain);
    if (!earlier) return undefined;
    const found = await this.#reread(domain, earlier);
    if (!('mine' in found) || !found.mine) return undefined;
    try {
      return await this.#kv.update(domain, this.#value(since, token), found.revision);
    } catch (err) {
      if (isWrongRevision(err)) return undefined;
      // No answer: the update may have been stored; the new token tells.
      const reread = await this.#reread(domain, [{ since, token }]);
      if ('unknown' in reread) this.#giveUp(domain, { since, token });
      return 'mine' in reread && reread.mine ? reread.revision : undefined;
    }
  }

  /** Remembers a take this book does not hold, which the key may still hold, for #retake. */
  #giveUp(domain: string, take: Take): void {
    const takes = this.#givenUp.get(domain) ?? [];
    takes.push({ since: take.since, token: take.token });
    if (takes.length > MAX_GIVEN_UP) takes.shift();
    this.#givenUp.set(domain, takes);
  }

  /** The key's current revision when it holds one of these takes of this node's. */
  async #reread(domain: string, takes: readonly Take[]): Promise<Reread> {
    let entry: Awaited<ReturnType<KV['get']>>;
    try {
      entry = await this.#kv.get(domain);
    } catch (err) {
      return { unknown: `could not read the lease: ${describe(err)}` };
    }
    if (entry?.operation !== 'PUT') return { mine: false, reason: 'the lease key is gone' };
    let stored: Partial<StoredLease> | undefined;
    try {
      stored = JSON.parse(utf8Decoder.decode(entry.value)) as Partial<StoredLease>;
    } catch {
      stored = undefined;
    }
    if (
      stored?.node === this.#node &&
      takes.some((take) => stored.since === take.since && stored.lease === take.token)
    ) {
      return { mine: true, revision: entry.revision };
    }
    const holder = typeof stored?.node === 'string' ? stored.node : 'unknown';
    const which = holder === this.#node ? 'another lease of this node' : `node ${holder}`;
    return { mine: false, reason: `the lease key is held by ${which} (revision ${entry.revision})` };
  }

  #value(since: number, token: string): Uint8Array {
    return utf8.encode(JSON.stringify({ node: this.#node, since, lease: token } satisfies StoredLease));
  }

  #keep(domain: string, revision: number, since: number, token: string, started: number): void {
    this.#givenUp.delete(domain);
    const timer = setInterval(() => void this.renew(domain), Math.max(50, this.#ttlMs / 4));
    timer.unref();
    this.#held.set(domain, { revision, since, token, validUntil: started + (this.#ttlMs * 3) / 4, timer });
  }

  #drop(domain: string, held: Held, reason: string): void {
    clearInterval(held.timer);
    this.#held.delete(domain);
    this.#giveUp(domain, held);
    this.lost++;
    this.#onLost(domain, reason);
  }
}
