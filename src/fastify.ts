/**
 * `ringstore/fastify`: the HTTP API as a fastify plugin, for applications that already run fastify.
 *
 *   import Fastify from 'fastify';
 *   import { RingStore } from 'ringstore';
 *   import { ringstore } from 'ringstore/fastify';
 *
 *   const store = await RingStore.open({ dir: './data' });
 *   const app = Fastify();
 *   await app.register(ringstore, { store, prefix: '/events' });
 */
export { TokenAuthority, type TokenSpec } from './api/http/auth.js';
export { type RingstorePluginOptions, ringstore, ringstore as default } from './api/http/fastify-plugin.js';
export { RingStoreError } from './errors.js';
