import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunReport } from '../report.js';
import { type HttpReport, httpCharts } from './http-charts.js';
import { runCharts } from './run-charts.js';
import { writeCharts } from './write-charts.js';

/**
 * `npm run bench:charts`: draws the SVG charts of the results already in bench/results/ (latest.json
 * and http-latest.json, the newest full runs) without running a benchmark. `npm run bench` and
 * `npm run bench:http` draw them themselves after each run.
 */
const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const resultsDir = join(projectRoot, 'bench', 'results');

const sources: [string, (json: unknown) => Map<string, string>][] = [
  ['latest', (json) => runCharts(json as RunReport)],
  ['http-latest', (json) => httpCharts(json as HttpReport)],
];
for (const [base, draw] of sources) {
  const file = join(resultsDir, `${base}.json`);
  if (!existsSync(file)) continue;
  for (const path of writeCharts(resultsDir, base, draw(JSON.parse(readFileSync(file, 'utf8'))))) {
    console.log(`chart: ${path}`);
  }
}
