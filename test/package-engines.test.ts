import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

/**
 * `engines` promises a Node range; every package installed with ringstore must accept all of it,
 * or `npm ci` warns (EBADENGINE) and the package may not run: cookie@2 (through fastify's
 * light-my-request@6.8) wanted Node 22, hence the override to light-my-request 6.6.0 in package.json.
 * semver comes with fastify.
 */
const semver = createRequire(import.meta.url)('semver') as {
  subset(sub: string, dom: string): boolean;
};

interface LockEntry {
  version?: string;
  dev?: boolean;
  optional?: boolean;
  engines?: { node?: string };
}

const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  engines: { node: string };
};
const lock = JSON.parse(readFileSync(new URL('../package-lock.json', import.meta.url), 'utf8')) as {
  packages: Record<string, LockEntry>;
};

describe('engines', () => {
  it('every runtime dependency in the lockfile accepts every Node version that engines allows', () => {
    const refusing = Object.entries(lock.packages)
      .filter(([path, entry]) => path !== '' && !entry.dev && !entry.optional && entry.engines?.node)
      .filter(([, entry]) => !semver.subset(manifest.engines.node, entry.engines?.node as string))
      .map(([path, entry]) => `${path}@${entry.version} wants node ${entry.engines?.node}`);
    expect(refusing).toEqual([]);
  });
});
