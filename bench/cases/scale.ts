import { rmSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import type { CaseContext } from '../case.js';
import { type BenchConfig, sizedConfig } from '../config.js';
import { abortNote, type Fresh, killFreshWhen, runFresh } from '../fresh.js';
import { type CaseResult, MIB, round, throughput } from '../measure.js';
import type { AppendProgress } from '../probes/append.js';
import type { OpenAnswer, OpenInput } from '../probes/open.js';
import { note } from '../progress.js';
import { BENCH_AGGREGATE_TYPE, BENCH_DOMAIN, seededRandom, Workload } from '../workload.js';
import { type StoreWritten, writeThroughApi } from './api-write.js';
import { sizeLabel, storeBytes } from './store-files.js';

/**
 * Issue 10's scale case: for each size of BENCH_SCALE_EVENTS, write a store through RingStore.put
 * (100-byte events, batches of 10, `scaleInstanceEvents` events per instance, durability 'write'),
 * close it, and open it in a fresh process, once with StorageEngine.open and once with
 * RingStore.open: open time, resident set after open and after one get(). The largest store is
 * then reopened by a process that keeps appending until it is SIGKILLed, and opened once more in a
 * fresh process: open after a crash. Each store is removed once measured.
 */
const APIS = ['engine', 'ringstore'] as const;

/** Disk per event, with room to spare: 100-byte events took about 150 bytes with their index. */
const DISK_BYTES_PER_EVENT = 256;

function checkFreeDisk(dir: string, events: number): void {
  const disk = statfsSync(dir);
  const free = disk.bavail * disk.bsize;
  const needed = events * DISK_BYTES_PER_EVENT;
  if (free < needed) {
    throw new Error(
      `the scale case needs about ${Math.ceil(needed / MIB)} MiB free in ${dir}, ${Math.floor(free / MIB)} MiB are`,
    );
  }
}

function probeOpen(
  api: OpenInput['api'],
  dir: string,
  readId: number,
  rerunAborted: boolean,
): Promise<Fresh<OpenAnswer>> {
  return runFresh<OpenAnswer>(
    { probe: 'open', input: { api, dir, domain: BENCH_DOMAIN, aggregateType: BENCH_AGGREGATE_TYPE, readId } },
    rerunAborted,
  );
}

interface RowFacts {
  id: string;
  api: OpenInput['api'];
  description: string;
  bytes: number;
  writeEventsPerSec?: number;
  afterCrash: boolean;
  notes: string[];
}

function openRow(answer: OpenAnswer, facts: RowFacts): CaseResult {
  return {
    id: facts.id,
    kind: 'open',
    system: facts.api,
    description: facts.description,
    ...throughput(answer.storeEvents, facts.bytes, answer.openSeconds),
    peakRssMb: answer.peakRssMb,
    notes: facts.notes,
    open: {
      api: facts.api,
      storeEvents: answer.storeEvents,
      storeMb: round(facts.bytes / MIB, 1),
      openSeconds: round(answer.openSeconds, 3),
      rssBeforeOpenMb: answer.rssBeforeOpenMb,
      rssAfterOpenMb: answer.rssAfterOpenMb,
      readMs: round(answer.readMs, 2),
      readEvents: answer.readEvents,
      rssAfterReadMb: answer.rssAfterReadMb,
      ...(facts.writeEventsPerSec === undefined ? {} : { writeEventsPerSec: facts.writeEventsPerSec }),
      afterCrash: facts.afterCrash,
    },
  };
}

/** Opens a cleanly closed store of `events` events with each API and checks what it finds. */
async function openClean(
  dir: string,
  config: BenchConfig,
  workload: Workload,
  written: StoreWritten,
): Promise<CaseResult[]> {
  const rows: CaseResult[] = [];
  const readId = workload.idOf(workload.readSample(1)[0]!);
  const size = sizeLabel(config.events);
  for (const api of APIS) {
    note(`scale ${size}: opening with ${api} in a fresh process`);
    const { answer, aborts } = await probeOpen(api, dir, readId, true);
    if (answer.storeEvents !== config.events || answer.readVersion !== config.scaleInstanceEvents) {
      throw new Error(
        `${api} opened ${answer.storeEvents} events (wrote ${config.events}) and read instance ${readId} ` +
          `at version ${answer.readVersion} (wrote ${config.scaleInstanceEvents})`,
      );
    }
    rows.push(
      openRow(answer, {
        id: `open ${api} ${size}`,
        api,
        description: `${api === 'engine' ? 'StorageEngine' : 'RingStore'}.open, fresh process`,
        bytes: storeBytes(dir),
        ...(api === 'ringstore' ? { writeEventsPerSec: written.eventsPerSec } : {}),
        afterCrash: false,
        notes: [
          ...(api === 'ringstore'
            ? [
                `written through RingStore.put, durability write, ${config.inFlight} puts in flight; ` +
                  `the writing process had ${Math.round(written.rssMb)} MiB resident before close`,
              ]
            : []),
          ...abortNote(aborts),
        ],
      }),
    );
  }
  return rows;
}

/** Appends to the store in a process that is SIGKILLed mid-append, then opens it in a fresh one. */
async function openAfterCrash(dir: string, config: BenchConfig, workload: Workload): Promise<CaseResult> {
  const killAfter = Math.max(10_000, Math.round(config.events / 100));
  // A seeded moment within the next few commit cycles, so the kill does not always land just after one.
  const delayMs = Math.floor(seededRandom(config.seed)() * 50);
  const size = sizeLabel(config.events);
  note(
    `scale ${size}: appending in a fresh process, SIGKILL after ${killAfter.toLocaleString('en-US')} events`,
  );
  const killed = await killFreshWhen<AppendProgress>(
    {
      probe: 'append',
      input: {
        dir,
        config,
        firstBatch: workload.batchCount,
        inFlight: config.inFlight,
        reportEvery: Math.max(config.batchEvents, Math.round(killAfter / 10)),
      },
    },
    (progress) => progress.ackedEvents >= killAfter,
    delayMs,
  );
  note(`scale ${size}: opening after the crash in a fresh process`);
  const { answer } = await probeOpen('ringstore', dir, killed.id, false);
  if (answer.readVersion < killed.version || answer.storeEvents < config.events + killed.ackedEvents) {
    throw new Error(
      `after the crash instance ${killed.id} is at version ${answer.readVersion} (acknowledged ` +
        `${killed.version}) and the store holds ${answer.storeEvents} events (acknowledged ` +
        `${config.events + killed.ackedEvents})`,
    );
  }
  return openRow(answer, {
    id: `open ringstore ${size} after crash`,
    api: 'ringstore',
    description: 'RingStore.open after SIGKILL mid-append, fresh process',
    bytes: storeBytes(dir),
    afterCrash: true,
    notes: [
      `appender SIGKILLed ${delayMs} ms after ${killed.ackedEvents.toLocaleString('en-US')} appended ` +
        `events were acknowledged (durability write, ${config.inFlight} puts in flight)`,
      `${(answer.storeEvents - config.events).toLocaleString('en-US')} appended events kept, ` +
        `${answer.recoveryActions} recovery action(s)`,
    ],
  });
}

export async function run(context: CaseContext): Promise<CaseResult[]> {
  const sizes = context.config.scaleEvents;
  checkFreeDisk(context.dir, Math.max(...sizes));
  const rows: CaseResult[] = [];
  for (const events of sizes) {
    const config = sizedConfig(context.config, events, context.config.scaleInstanceEvents);
    const workload = new Workload(config);
    const dir = join(context.dir, `store-${events}`);
    try {
      const written = await writeThroughApi(dir, config, workload, `scale ${sizeLabel(events)} write`);
      rows.push(...(await openClean(dir, config, workload, written)));
      if (events === sizes.at(-1)) rows.push(await openAfterCrash(dir, config, workload));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return rows;
}
