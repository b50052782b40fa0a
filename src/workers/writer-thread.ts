import { parentPort, workerData } from 'node:worker_threads';
import { Ring } from '../pipeline/ring.js';
import { waitStrategy } from '../pipeline/wait-strategy.js';
import { toWireError, WriterLoop } from '../pipeline/writer-loop.js';
import type { FileIO } from '../storage/file-io.js';
import { StorageWriter } from '../storage/writer.js';
import type { WriterWorkerData, WriterWorkerMessage } from './writer-protocol.js';

/**
 * The body of the writer thread: opens the storage with `io` (recovery runs here, before 'ready'),
 * then runs the writer loop (src/pipeline/writer-loop.ts) until the main thread asks it to stop or
 * the store fails. writer-worker.ts runs it with the real file I/O.
 */
export async function runWriterThread(io: FileIO): Promise<void> {
  const port = parentPort!;
  const data = workerData as WriterWorkerData;
  const post = (message: WriterWorkerMessage) => port.postMessage(message);
  const ring = Ring.attach(data.sab);
  let storage: StorageWriter;
  try {
    storage = StorageWriter.open(data.dir, {
      io,
      generationBytes: data.generationBytes,
      indexCacheBytes: data.indexCacheBytes,
      instanceCacheSize: data.instanceCacheSize,
      checkpointIndexBytes: data.checkpointIndexBytes,
      runFanIn: data.runFanIn,
    });
  } catch (error) {
    post({ type: 'open-failed', error: toWireError(error) });
    return;
  }
  post({
    type: 'ready',
    generation: storage.generation,
    recovery: [...storage.recovery],
    indexRebuilds: [...storage.indexRebuilds],
  });
  const loop = new WriterLoop(ring, storage, {
    durability: data.durability,
    maxBatchesPerCycle: data.maxBatchesPerCycle,
    idleWaitMs: data.idleWaitMs,
    idleWait: waitStrategy(data.idleWait),
    claimTimeoutMs: data.claimTimeoutMs,
    publish: post,
  });
  const end = await loop.run();
  try {
    await storage.drain();
    storage.close();
  } catch (error) {
    if (end === 'stopped') {
      post({ type: 'failed', error: toWireError(error) });
      return;
    }
  }
  if (end === 'stopped') post({ type: 'stopped', generation: storage.generation });
}
