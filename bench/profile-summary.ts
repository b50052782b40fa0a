import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * `node dist/bench/profile-summary.js <dir> [top] [inclusive-filter]`: sums the self time of every
 * function over the .cpuprofile files under <dir> (one per thread when the bench ran with
 * BENCH_CPU_PROF=<dir>) and prints the top ones per profile, so "where does the time go" has a
 * short, plain answer. With a filter (a substring of the file, e.g. `dist/src/storage`), it also
 * prints the inclusive time (self plus callees) of the matching functions.
 * Time inside Atomics.wait shows as self time of the JS function that waits: a blocked thread looks
 * busy in these profiles.
 */
interface ProfileNode {
  id: number;
  children?: number[];
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

function profilesUnder(dir: string): string[] {
  if (!statSync(dir).isDirectory()) return [dir];
  const found: string[] = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) found.push(...profilesUnder(path));
    else if (entry.endsWith('.cpuprofile')) found.push(path);
  }
  return found.sort();
}

function label(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file =
    url === ''
      ? ''
      : ` ${url.replace(/^file:\/\//, '').replace(/^.*\/(dist|node_modules)\//, '$1/')}:${lineNumber + 1}`;
  return `${functionName === '' ? '(anonymous)' : functionName}${file}`;
}

function summarize(profile: CpuProfile, top: number, inclusiveFilter: string | undefined): string[] {
  const byNode = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const selfMicros = new Map<string, number>();
  const inclusiveMicros = new Map<string, number>();
  // timeDeltas[i] is the time between sample i-1 and sample i: charge it to sample i-1's frame.
  for (let i = 0; i + 1 < profile.samples.length; i++) {
    const node = byNode.get(profile.samples[i]!);
    if (node === undefined) continue;
    const delta = profile.timeDeltas[i + 1] ?? 0;
    const key = label(node);
    selfMicros.set(key, (selfMicros.get(key) ?? 0) + delta);
    if (inclusiveFilter === undefined) continue;
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = byNode.get(id)!;
      if (!frame.callFrame.url.includes(inclusiveFilter)) continue;
      const name = label(frame);
      if (seen.has(name)) continue;
      seen.add(name);
      inclusiveMicros.set(name, (inclusiveMicros.get(name) ?? 0) + delta);
    }
  }
  const total = profile.endTime - profile.startTime;
  const idle = selfMicros.get('(idle)') ?? 0;
  const lines = [`  wall ${(total / 1000).toFixed(0)} ms, busy ${((total - idle) / 1000).toFixed(0)} ms`];
  const line = (name: string, micros: number) =>
    `  ${(micros / 1000).toFixed(0).padStart(7)} ms ${((micros / total) * 100).toFixed(1).padStart(5)}%  ${name}`;
  const ranked = (micros: Map<string, number>) =>
    [...micros.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
  for (const [name, micros] of ranked(selfMicros)) lines.push(line(name, micros));
  if (inclusiveMicros.size > 0) {
    lines.push(`  inclusive (self + callees), functions in files matching ${inclusiveFilter}:`);
    for (const [name, micros] of ranked(inclusiveMicros)) lines.push(line(name, micros));
  }
  return lines;
}

const [dir, topArgument, inclusiveFilter] = process.argv.slice(2);
if (dir === undefined) {
  console.error(
    'usage: node dist/bench/profile-summary.js <dir with .cpuprofile files> [top=15] [inclusive-filter]',
  );
  process.exit(2);
}
const top = Number(topArgument ?? 15);
for (const path of profilesUnder(dir)) {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  console.log(relative(dir, path) || path);
  console.log(summarize(profile, top, inclusiveFilter).join('\n'));
}
