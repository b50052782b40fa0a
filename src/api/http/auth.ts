import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { RingStoreError } from '../../errors.js';
import { STORAGE_NAME_PATTERN } from '../../model/names.js';
import { isPlainObject } from './wire.js';

export type Scope = 'read' | 'append' | 'admin';

/**
 * One entry of the tokens file. Tokens are stored only as SHA-256 hex digests, so the file is no
 * secret worth stealing. `scopes` maps a domain name, or `*` for every domain, to the scopes granted
 * there; anything not granted is denied. `admin` (store-wide operations: backup) counts only when
 * granted on `*`.
 *
 *   [{ "name": "ingest", "sha256": "9f86…", "scopes": { "billing": ["append"], "*": ["read"] } }]
 */
export interface TokenSpec {
  name: string;
  sha256: string;
  scopes: Record<string, Scope[]>;
}

export interface Principal {
  readonly name: string;
  readonly scopes: ReadonlyMap<string, ReadonlySet<Scope>>;
}

interface TokenEntry extends Principal {
  readonly digest: Buffer;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
const SCOPES: readonly Scope[] = ['read', 'append', 'admin'];

function invalid(message: string): RingStoreError {
  return new RingStoreError('INVALID_OPTION', `tokens: ${message}`);
}

export function sha256Hex(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export class TokenAuthority {
  readonly #entries: readonly TokenEntry[];

  constructor(specs: unknown) {
    if (!Array.isArray(specs) || specs.length === 0) throw invalid('must be a non-empty JSON array');
    this.#entries = specs.map((spec, index) => parseSpec(spec, index));
    const names = new Set(this.#entries.map((e) => e.name));
    if (names.size !== this.#entries.length) throw invalid('token names must be unique');
  }

  static fromFile(path: string): TokenAuthority {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      throw invalid(`cannot read the tokens file ${path}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw invalid(`the tokens file ${path} is not valid JSON`);
    }
    return new TokenAuthority(parsed);
  }

  /**
   * Finds the principal of an `Authorization: Bearer <token>` header. The presented token is hashed
   * and compared with every stored digest in constant time, without stopping at a match, so neither
   * the token nor which entry matched leaks through timing.
   */
  authenticate(header: string | undefined): Principal | undefined {
    if (header === undefined || header.length > 1024) return undefined;
    // The scheme is case-insensitive (RFC 9110, 11.1); the token is compared exactly.
    const match = /^[Bb][Ee][Aa][Rr][Ee][Rr] ([\x21-\x7e]+)$/.exec(header);
    if (!match) return undefined;
    const digest = createHash('sha256')
      .update(match[1] as string, 'utf8')
      .digest();
    let found: TokenEntry | undefined;
    for (const entry of this.#entries) {
      if (timingSafeEqual(entry.digest, digest) && found === undefined) found = entry;
    }
    return found;
  }

  static allows(principal: Principal, domain: string, scope: Scope): boolean {
    return (
      principal.scopes.get(domain)?.has(scope) === true || principal.scopes.get('*')?.has(scope) === true
    );
  }
}

function parseSpec(spec: unknown, index: number): TokenEntry {
  if (!isPlainObject(spec)) throw invalid(`entry ${index} must be an object { name, sha256, scopes }`);
  const { name, sha256, scopes } = spec;
  if (typeof name !== 'string' || name.length === 0 || name.length > 128) {
    throw invalid(`entry ${index}: name must be a string of 1 to 128 characters`);
  }
  if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256)) {
    throw invalid(`entry ${name}: sha256 must be 64 lowercase hex digits (the SHA-256 of the token)`);
  }
  if (!isPlainObject(scopes)) throw invalid(`entry ${name}: scopes must be an object`);
  const granted = new Map<string, Set<Scope>>();
  for (const [domain, list] of Object.entries(scopes)) {
    if (domain !== '*' && !STORAGE_NAME_PATTERN.test(domain)) {
      throw invalid(`entry ${name}: ${JSON.stringify(domain)} is neither a domain name nor *`);
    }
    if (!Array.isArray(list) || !list.every((s) => SCOPES.includes(s as Scope))) {
      throw invalid(`entry ${name}: scopes of ${domain} must be a list of "read", "append" and "admin"`);
    }
    granted.set(domain, new Set(list as Scope[]));
  }
  return { name, digest: Buffer.from(sha256, 'hex'), scopes: granted };
}
