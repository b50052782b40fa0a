#!/usr/bin/env node
// Copies each example file into the code block that quotes it in README.md and docs/*.md.
// A quoting block is a ```js fence right after a line `<!-- example: examples/NAME.mjs -->`.
// test/examples.test.ts fails while any quote differs from its file; run this to fix them.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const MARKED = /(<!-- example: (examples\/[\w.-]+\.mjs) -->\n```js\n)([\s\S]*?)(```)/g;
const pages = ['README.md', ...readdirSync(join(root, 'docs')).map((name) => `docs/${name}`)].filter((page) =>
  page.endsWith('.md'),
);
for (const page of pages) {
  const path = join(root, page);
  const before = readFileSync(path, 'utf8');
  const after = before.replace(
    MARKED,
    (_all, head, file, _body, fence) => `${head}${readFileSync(join(root, file), 'utf8')}${fence}`,
  );
  if (after !== before) {
    writeFileSync(path, after);
    console.log(`${page}: quotes updated`);
  }
}
