#!/usr/bin/env node
// The npm registry reachable here lacks some platform builds (e.g. @biomejs/cli-darwin-x64), and
// npm then leaves them out of package-lock.json, after which `npm ci` refuses the lockfile as out of
// sync. This adds a lock entry, marked optional and bound to its os/cpu, for every optional
// dependency npm left out, so `npm ci` on linux-x64 skips it without fetching. Run it after any
// `npm install` that rewrites package-lock.json.
import { readFileSync, writeFileSync } from 'node:fs';

const lockPath = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(lockPath, 'utf8'));
const platform = (name) => {
  const os = ['linux', 'darwin', 'win32', 'android', 'freebsd'].find((o) => name.includes(o));
  const cpu = ['arm64', 'x64', 'arm', 'ia32'].find((c) => new RegExp(`-${c}(-|$)`).test(name));
  const entry = {};
  if (os) entry.os = [os];
  if (cpu) entry.cpu = [cpu];
  if (name.endsWith('-musl')) entry.libc = ['musl'];
  return entry;
};
let added = 0;
for (const [path, entry] of Object.entries(lock.packages)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    if (lock.packages[key]) continue;
    const meta = platform(name);
    if (!meta.os) continue;
    lock.packages[key] = { version, ...(entry.dev ? { dev: true } : {}), optional: true, ...meta };
    added++;
    console.log(`added ${name}@${version} (needed by ${path || 'root'})`);
  }
}
writeFileSync(lockPath, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`${added} entries added`);
