import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { FastifyInstance } from 'fastify';
import type { createHttpServer as CreateHttpServer } from '../../src/api/http/server.js';
import { median } from '../measure.js';
import { threadMicros } from '../thread-cpu.js';
import { NullStore } from './null-store.js';
import { SCENARIOS } from './scenarios.js';

/**
 * `node dist/bench/http/inject-cpu.js --variant name=dist/src/api/http/server.js … [--requests 20000]
 *   [--rounds 6] [--concurrency 50] [scenario]`
 *
 * The HTTP layer's CPU time per request without sockets or a store: each variant's createHttpServer
 * (from its own build) over a NullStore, driven by fastify's inject() with `concurrency` requests in
 * flight, in one process. Main-thread CPU time comes from /proc (Linux). Rounds alternate A B, B A;
 * the medians are the result. Far steadier than a load test on a shared machine, so small
 * differences between builds show; bench/http/cpu.ts then checks them over real sockets.
 */
interface Variant {
  name: string;
  app: FastifyInstance;
  micros: number[];
}

interface Request {
  method: 'POST' | 'GET';
  url: string;
  headers: Record<string, string>;
  payload: string | undefined;
}

/** The scenario's requests, taken from the load test's own generators, in a fixed order. */
function requestsOf(scenarioName: string, count: number): Request[] {
  const scenario = SCENARIOS.find((s) => s.name === scenarioName);
  if (!scenario) throw new Error(`unknown scenario ${scenarioName}`);
  const definitions = scenario.requests({ events: 0 }, 'ringstore');
  const out: Request[] = [];
  for (let i = 0; i < count; i++) {
    const definition = definitions[i % definitions.length];
    const spec = definition?.setupRequest?.({}, {}) ?? {};
    out.push({
      method: spec.method as 'POST' | 'GET',
      url: spec.path as string,
      headers: spec.headers ?? {},
      payload: spec.body as string | undefined,
    });
  }
  return out;
}

async function drive(app: FastifyInstance, requests: readonly Request[], concurrency: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < requests.length) {
      const request = requests[next++] as Request;
      const response = await app.inject(request);
      if (response.statusCode >= 300)
        throw new Error(`${request.url}: ${response.statusCode} ${response.body}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: {
      variant: { type: 'string', multiple: true },
      requests: { type: 'string', default: '20000' },
      rounds: { type: 'string', default: '6' },
      concurrency: { type: 'string', default: '50' },
    },
    allowPositionals: true,
  });
  const scenarioName = positionals[0] ?? 'append-10';
  const amount = Number(values.requests);
  const rounds = Number(values.rounds);
  const concurrency = Number(values.concurrency);
  const requests = requestsOf(scenarioName, amount);
  const variants: Variant[] = [];
  for (const spec of values.variant ?? ['this=dist/src/api/http/server.js']) {
    const at = spec.indexOf('=');
    if (at < 1) throw new Error(`--variant name=path/to/server.js, got ${spec}`);
    const module = (await import(pathToFileURL(resolve(spec.slice(at + 1))).href)) as {
      createHttpServer: typeof CreateHttpServer;
    };
    const app = await module.createHttpServer(new NullStore(), { logger: { level: 'info' } });
    variants.push({ name: spec.slice(0, at), app, micros: [] });
  }
  for (const v of variants) await drive(v.app, requests, concurrency);
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? variants : [...variants].reverse();
    for (const v of order) {
      const before = threadMicros('self', process.pid);
      await drive(v.app, requests, concurrency);
      v.micros.push((threadMicros('self', process.pid) - before) / amount);
    }
  }
  for (const v of variants) await v.app.close();
  process.stdout.write(
    `${scenarioName} via inject(), ${amount} requests × ${rounds} rounds, ${concurrency} in flight\n`,
  );
  process.stdout.write('| variant | main µs/req | rounds |\n|---|---:|---|\n');
  for (const v of variants) {
    process.stdout.write(
      `| ${v.name} | ${median(v.micros).toFixed(2)} | ${v.micros.map((m) => m.toFixed(1)).join(' ')} |\n`,
    );
  }
}

await main();
