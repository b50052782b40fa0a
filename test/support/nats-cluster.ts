/** Three nats-servers on free loopback ports for the cluster tests. One copy, in bench/ (the cluster bench uses it too). */
export {
  NATS_SERVER,
  type NatsCluster,
  type NatsServer,
  startNatsCluster,
  waitForMetaLeader,
} from '../../bench/nats-cluster.js';
