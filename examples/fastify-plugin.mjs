import { createHash } from 'node:crypto';
import Fastify from 'fastify';
import { RingStore } from 'ringstore';
import { ringstore, TokenAuthority } from 'ringstore/fastify';

// Mount the HTTP API on an application that already runs fastify, under a prefix.
const store = await RingStore.open({ dir: './example-data' });
const token = 'change-me'; // the server keeps only its SHA-256; TokenAuthority.fromFile reads a file of them
const sha256 = createHash('sha256').update(token).digest('hex');
const app = Fastify();
app.get('/', async () => 'the host application');
await app.register(ringstore, {
  store, // the app opens and closes the store
  prefix: '/events', // routes: /events/v1/…, /events/health, /events/metrics
  tokens: new TokenAuthority([{ name: 'app', sha256, scopes: { '*': ['read', 'append'] } }]), // optional
  bodyLimit: 256 * 1024, // also ingestInFlight, sseHeartbeatMs, retryAfterSeconds
});
const address = await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 3000) });

const health = await fetch(`${address}/events/health`);
const domains = await fetch(`${address}/events/v1/domains`, {
  headers: { authorization: `Bearer ${token}` },
});
console.log(`health ${health.status}, domains ${domains.status} ${JSON.stringify(await domains.json())}`);
await app.close();
await store.close();
