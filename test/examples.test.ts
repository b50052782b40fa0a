import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createHttpServer } from '../src/api/http/server.js';
import { MemoryEventStore } from '../src/model/memory-store.js';
import { startNatsCluster } from './support/nats-cluster.js';

/**
 * Every example of README.md and docs/*.md is a file in examples/, run here as an application runs
 * it: `node examples/NAME.mjs` against the built package, importing `ringstore` by name (the
 * package's exports resolve its own name for files inside it), in a fresh working directory so
 * `./example-data` starts empty. The pages quote the files verbatim: scripts/quote-examples.mjs
 * copies them in, and the last tests fail while a quote differs or a JS block is not a quote.
 */
const root = fileURLToPath(new URL('../', import.meta.url));
const examples = readdirSync(join(root, 'examples'))
  .filter((name) => name.endsWith('.mjs'))
  .sort();
const scratch: string[] = [];
afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

function run(
  file: string,
  env: Record<string, string> = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const cwd = mkdtempSync(join(tmpdir(), 'ringstore-example-'));
  scratch.push(cwd);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'examples', file)], {
      cwd,
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** What each example must print (its key lines), in order. */
const EXPECTED: Record<string, RegExp[]> = {
  'embedded.mjs': [
    /^person \d+ is at version 2: Registered, NameChanged$/m,
    /^1 Registered event\(s\); the next read starts at 2$/m,
    /^position 0: Registered \{"first":"John"\}\nposition 1: NameChanged \{"first":"Jaughn"\}\n$/m,
  ],
  'http-client.mjs': [/^invoice \d+ is at version 1: \{"amount":10\}\n$/],
  'fastify-plugin.mjs': [/^health 200, domains 200 \{"domains":\[\],"generation":0\}\n$/],
  'streams.mjs': [
    /^10 Paid events since \d+; versions 10…20 of \d+$/m,
    /^version 29: Billed\nversion 30: Paid$/m,
    /^30 events at generation \d+; continue at position 30$/m,
  ],
  'consistent-cut.mjs': [
    /^at generation \d+: invoice \d+ at version 1, now at version 2$/m,
    /^the cut holds 1 invoice event\(s\) and 1 parcel event\(s\)$/m,
  ],
  'subscription.mjs': [
    /^backlog: 1 Paid event\(s\), ended 'caught-up', resume at 2$/m,
    /^live: Paid at position 2, caught up: true$/m,
    /^ended 'closed', resume at 3$/m,
  ],
  'emmett.mjs': [
    /^account-17: balance 10 at stream version 1$/m,
    /^account-18: Deposited at stream position 1$/m,
  ],
  'consumer.mjs': [
    /^mailed: Paid at position 1\nrun 1 ended 'caught-up' at position 2\nrun 2 failed: mail server down$/m,
    /^after the restart: resume at position 2\nmailed: Paid at position 2$/m,
    /^live: Paid at position 3\nlive run ended 'closed' at position 4\n$/m,
  ],
  'backward.mjs': [
    /^invoice at version 25, newest first: 25, 24, 23$/m,
    /^then: 22 Billed, 21 Billed, 20 Paid$/m,
    /^live: Voided at position 25\n$/m,
  ],
  'cluster.mjs': [
    /^Paid at version 2, position 1, generation 2$/m,
    /^on b: version 2: Opened, Paid$/m,
    /^a: applied 2, owner true\nb: applied 2, owner false\n$/m,
  ],
  'decider.mjs': [
    /^balance 10 after 1 event\(s\), version 1$/m,
    /^appended at position 0 in 1 attempt\(s\)$/m,
    /^refused: insufficient funds$/m,
    /^account \d+ is at version 3$/m,
  ],
};

describe('examples/*.mjs run against the built package', () => {
  it('every example has expectations here', () => {
    expect(examples).toEqual(Object.keys(EXPECTED).sort());
  });

  for (const file of examples) {
    it(`node examples/${file} exits 0 and prints what the docs promise`, async () => {
      const env: Record<string, string> = { PORT: '0' };
      let close = async (): Promise<void> => {};
      if (file === 'http-client.mjs') {
        const store = new MemoryEventStore();
        const app = await createHttpServer(store);
        env.RINGSTORE_URL = await app.listen({ host: '127.0.0.1', port: 0 });
        close = async () => {
          await app.close();
          await store.close();
        };
      }
      if (file === 'cluster.mjs') {
        const nats = await startNatsCluster(3);
        env.RINGSTORE_NATS = nats.urls.join(',');
        close = () => nats.stop();
      }
      const result = await run(file, env).finally(close);
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      for (const pattern of EXPECTED[file] ?? []) expect(result.stdout).toMatch(pattern);
    });
  }
});

const MARKER = /^<!-- example: (examples\/[\w.-]+\.mjs) -->$/;
const pages = ['README.md', ...readdirSync(join(root, 'docs')).map((name) => `docs/${name}`)].filter((page) =>
  page.endsWith('.md'),
);

/** Every fenced block of a page with its language and the example file its marker names. */
function blocks(page: string): Array<{ line: number; lang: string; body: string; quotes?: string }> {
  const lines = readFileSync(join(root, page), 'utf8').split('\n');
  const found: Array<{ line: number; lang: string; body: string; quotes?: string }> = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)$/.exec(lines[i] as string);
    if (!open) continue;
    const end = lines.indexOf('```', i + 1);
    if (end === -1) throw new Error(`${page}:${i + 1}: unclosed code block`);
    const quotes = MARKER.exec(lines[i - 1] ?? '')?.[1];
    found.push({
      line: i + 1,
      lang: open[1] as string,
      body: lines.slice(i + 1, end).join('\n'),
      ...(quotes ? { quotes } : {}),
    });
    i = end;
  }
  return found;
}

describe('README.md and docs quote the examples verbatim', () => {
  const all = pages.flatMap((page) => blocks(page).map((block) => ({ page, ...block })));

  it('every quote equals its file (fix: node scripts/quote-examples.mjs)', () => {
    const quotes = all.filter((block) => block.quotes);
    expect(quotes.length).toBeGreaterThanOrEqual(examples.length);
    for (const block of quotes) {
      const file = readFileSync(join(root, block.quotes as string), 'utf8');
      expect(`${block.body}\n`, `${block.page}:${block.line} quotes ${block.quotes}`).toBe(file);
    }
  });

  it('every example is quoted, and every JavaScript or TypeScript block is a quote of one', () => {
    const quoted = new Set(all.map((block) => block.quotes).filter((file) => file !== undefined));
    expect([...quoted].sort()).toEqual(examples.map((file) => `examples/${file}`));
    const unquoted = all
      .filter(
        (block) => ['js', 'mjs', 'ts', 'javascript', 'typescript'].includes(block.lang) && !block.quotes,
      )
      .map((block) => `${block.page}:${block.line}`);
    expect(unquoted).toEqual([]);
  });
});
