/**
 * The names one ringstore cluster uses in a NATS account (docs/CLUSTER.md, "What lives in NATS"),
 * all derived from its namespace (default `ringstore`), so that several clusters can share an
 * account. Domain names ([a-z0-9][a-z0-9_-]*, src/model/names.ts) are valid in stream names,
 * subject tokens and KV keys as they are.
 */
export const DEFAULT_NAMESPACE = 'ringstore';

/** Namespaces name streams, subjects and buckets: letters, digits, `_` and `-`. */
export const NAMESPACE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;

/** Node ids name KV keys and appear in messages: the same rule as storage names, upper case allowed. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;

export class NatsNames {
  readonly namespace: string;
  readonly #streamPrefix: string;

  constructor(namespace: string = DEFAULT_NAMESPACE) {
    this.namespace = namespace;
    this.#streamPrefix = `${namespace.toUpperCase()}_`;
  }

  /** The stream that holds a domain's generations. */
  stream(domain: string): string {
    return `${this.#streamPrefix}${domain}`;
  }

  /** The domain of one of this namespace's stream names, or undefined for any other stream. */
  domainOfStream(name: string): string | undefined {
    return name.startsWith(this.#streamPrefix) ? name.slice(this.#streamPrefix.length) : undefined;
  }

  /** The subject a domain's generations are published on. */
  events(domain: string): string {
    return `${this.namespace}.events.${domain}`;
  }

  /** The subject a domain's owner answers forwarded puts on (request/reply). */
  puts(domain: string): string {
    return `${this.namespace}.put.${domain}`;
  }

  /** Announces a new domain stream so that every node starts following it at once. */
  get domains(): string {
    return `${this.namespace}.domains`;
  }

  /** KV bucket of domain leases: key = domain, value = the owning node; its max_age is the TTL. */
  get leaseBucket(): string {
    return `${this.namespace}_leases`;
  }

  /** KV bucket of node heartbeats (for `ringstore cluster status`): key = node id. */
  get nodeBucket(): string {
    return `${this.namespace}_nodes`;
  }
}
