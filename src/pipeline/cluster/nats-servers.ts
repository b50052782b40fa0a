import { isIPv6 } from 'node:net';
import { RingStoreError } from '../../errors.js';

/**
 * The nats-server list of a cluster node or tool, and how it becomes a NATS connection.
 *
 *   "nats://user:pw@a:4222, b:4222"  ──natsServers──►  ["nats://user:pw@a:4222", "b:4222"]
 *        (option, flag or variable)    (checked once,     (kept as written: options cross to the
 *                                       at the boundary)   writer thread as plain strings)
 *                                    ──natsConnectOptions──►  { servers: ["nats://a:4222", "b:4222"],
 *                                       (at each connect)       user: "user", pass: "pw" }
 *
 * The NATS client ignores credentials written in a URL (it reads only host and port, and with
 * user info it takes a host without a dot for an IPv6 address), so they are taken out of the URLs
 * and passed as its `user`/`pass` (or `token`, for `nats://token@host`) options.
 */

/** What `connect()` of the NATS client takes for a server list: the URLs, and credentials apart. */
export interface NatsConnectOptions {
  servers: string[];
  user?: string;
  pass?: string;
  token?: string;
}

/**
 * nats-server URLs, as an array or comma separated: each `nats://` or `tls://` URL with a host, a
 * bare `host[:port]`, or a bare IPv6 address; credentials in URLs all alike. Anything else is
 * INVALID_OPTION with `option` in its details and `label` (how the caller wrote it: an option, a
 * flag, a variable) in its message, so that a typo is not reported as a cluster that cannot be
 * reached. A refused entry is quoted without its credentials.
 */
export function natsServers(value: unknown, option: string, label = option): string[] {
  const list = typeof value === 'string' ? value.split(',') : value;
  const invalid = (message: string) =>
    new RingStoreError('INVALID_OPTION', `${label} ${message}`, { option });
  if (!Array.isArray(list) || list.length === 0) throw invalid('must name at least one nats-server URL');
  const servers: string[] = [];
  const credentials = new Set<string>();
  for (const entry of list) {
    const server = typeof entry === 'string' ? entry.trim() : '';
    if (server === '') throw invalid('must name at least one nats-server URL');
    const url = serverUrl(server);
    if (url === undefined) {
      throw invalid(
        `holds ${JSON.stringify(withoutCredentials(server).slice(0, 100))}, which is not a nats-server URL (nats://host:port, tls://host:port or host:port)`,
      );
    }
    if (url.username !== '') credentials.add(`${url.username}:${url.password}`);
    servers.push(server);
  }
  if (credentials.size > 1) throw invalid('holds URLs with different credentials: one connection uses one');
  return servers;
}

/**
 * The options of the NATS client's `connect()` for a server list, checked as natsServers checks it
 * (INVALID_OPTION naming `option`), so a caller calls this before it connects.
 */
export function natsConnectOptions(list: unknown, option = 'servers'): NatsConnectOptions {
  const options: NatsConnectOptions = { servers: [] };
  for (const server of natsServers(list, option)) {
    const url = serverUrl(server)!;
    if (url.username !== '' && url.password !== '') {
      options.user = decodeURIComponent(url.username);
      options.pass = decodeURIComponent(url.password);
    } else if (url.username !== '') {
      options.token = decodeURIComponent(url.username);
    }
    options.servers.push(withoutCredentials(server));
  }
  return options;
}

/** The URL of one entry, or undefined when it is not one the NATS client can connect to. */
function serverUrl(server: string): URL | undefined {
  const written = server.includes('://')
    ? server
    : isIPv6(server)
      ? `nats://[${server}]`
      : `nats://${server}`;
  let url: URL;
  try {
    url = new URL(written);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'nats:' && url.protocol !== 'tls:') return undefined;
  // A host of digits alone is read by the client as an IPv4 number (4222 → 0.0.16.126).
  if (url.hostname === '' || /^\d+$/.test(url.hostname)) return undefined;
  if (url.pathname !== '' && url.pathname !== '/') return undefined;
  return url;
}

/** The entry with any `user:password@` or `token@` taken out. */
function withoutCredentials(server: string): string {
  return server.replace(/^([a-z]+:\/\/)?[^@/]*@/i, '$1');
}
