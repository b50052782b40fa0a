import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { RingStoreError } from '../../errors.js';
import { describe, isNoResponders, isTemporarilyUnavailable, isTimeout } from './nats-errors.js';
import { natsConnectOptions } from './nats-servers.js';

/** One NATS connection with its JetStream client and manager. */
export interface JetStreamConnection {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

/** Timeout of one JetStream API request. */
const API_TIMEOUT_MS = 5_000;
/**
 * How long JetStream may stay unready after the connection is up: a cluster that has just started
 * answers its API only once its meta leader is elected, and a loaded machine can take seconds.
 */
const READY_MS = 30_000;

/**
 * Connects to NATS (reconnecting for ever once connected) and opens JetStream, asking its API until
 * it answers: a timeout, "no responders" or "temporarily unavailable" (no meta leader yet) is
 * retried until READY_MS, any other refusal (JetStream not enabled for the account, …) fails at once. Used by both threads of a
 * cluster node (src/api/cluster/cluster-node.ts and writer-node.ts), each on its own connection.
 */
export async function connectJetStream(servers: string[], name: string): Promise<JetStreamConnection> {
  let nc: NatsConnection;
  const connection = natsConnectOptions(servers);
  try {
    nc = await connect({
      ...connection,
      name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      timeout: 5000,
    });
  } catch (err) {
    throw new RingStoreError('CLUSTER_UNAVAILABLE', `cannot connect to NATS: ${describe(err)}`);
  }
  const deadline = Date.now() + READY_MS;
  for (let attempt = 0; ; attempt++) {
    try {
      const jsm = await jetstreamManager(nc, { timeout: API_TIMEOUT_MS });
      return { nc, js: jetstream(nc, { timeout: API_TIMEOUT_MS }), jsm };
    } catch (err) {
      const notYet = isTimeout(err) || isNoResponders(err) || isTemporarilyUnavailable(err);
      if (notYet && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, Math.min(1_000, 100 * 2 ** attempt)));
        continue;
      }
      await nc.close().catch(() => undefined);
      throw new RingStoreError('CLUSTER_UNAVAILABLE', `cannot open the cluster: ${describe(err)}`);
    }
  }
}
