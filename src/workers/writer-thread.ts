import { parentPort, workerData } from 'node:worker_threads';
import type { ClusterWriterNode } from '../pipeline/cluster/writer-node.js';
import { Ring } from '../pipeline/ring.js';
import { asyncWait, waitStrategy } from '../pipeline/wait-strategy.js';
import { toWireError, WriterLoop } from '../pipeline/writer-loop.js';
import type { FileIO } from '../storage/file-io.js';
import { StorageWriter } from '../storage/writer.js';
import type { WriterControlMessage, WriterWorkerData, WriterWorkerMessage } from './writer-protocol.js';

/**
 * The body of the writer thread: opens the storage with `io` (recovery runs here, before 'ready'),
 * then runs the writer loop (src/pipeline/writer-loop.ts) until the main thread asks it to stop or
 * the store fails. writer-worker.ts runs it with the real file I/O.
 *
 * In cluster mode (docs/CLUSTER.md) it also joins the cluster before 'ready' (ClusterWriterNode):
 * the loop's target then commits through JetStream, the replicas start once the main thread sends
 * 'follow', and the loop waits with 'async' when idle, since NATS answers on this thread's event loop.
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
      // Zeros written ahead only shorten fdatasyncs; without them they write every byte twice.
      preallocate: data.durability === 'fsync',
    });
  } catch (error) {
    post({ type: 'open-failed', error: toWireError(error) });
    return;
  }
  let cluster: ClusterWriterNode | undefined;
  const onControl = (message: WriterControlMessage) => {
    if (message.type === 'follow') cluster?.follow();
    else cluster?.control(message);
  };
  if (data.cluster) {
    try {
      // Loaded only in cluster mode: a single node's writer never loads the NATS client.
      const { ClusterWriterNode } = await import('../pipeline/cluster/writer-node.js');
      cluster = await ClusterWriterNode.start(data.cluster, storage, data.durability, post);
    } catch (error) {
      storage.close();
      post({ type: 'open-failed', error: toWireError(error) });
      return;
    }
    port.on('message', onControl);
  }
  post({
    type: 'ready',
    generation: storage.generation,
    recovery: [...storage.recovery],
    indexRebuilds: [...storage.indexRebuilds],
  });
  const loop = new WriterLoop(ring, cluster ? cluster.target : storage, {
    durability: data.durability,
    maxBatchesPerCycle: data.maxBatchesPerCycle,
    idleWaitMs: data.idleWaitMs,
    idleWait: cluster ? asyncWait : waitStrategy(data.idleWait),
    claimTimeoutMs: data.claimTimeoutMs,
    publish: post,
  });
  const end = await loop.run();
  if (cluster) {
    port.off('message', onControl);
    await cluster.close();
  }
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
