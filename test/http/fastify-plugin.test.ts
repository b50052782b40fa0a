import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256Hex, TokenAuthority } from '../../src/api/http/auth.js';
import { HttpEventStore } from '../../src/api/http/client.js';
import { ringstore } from '../../src/api/http/fastify-plugin.js';
import { MemoryEventStore } from '../../src/model/memory-store.js';
import { eventStoreContract } from '../contract/event-store-contract.js';

/** The HTTP API mounted on a host application by the `ringstore/fastify` plugin. */
async function hostApp(store: MemoryEventStore, plugin: Record<string, unknown>): Promise<FastifyInstance> {
  const app = Fastify();
  app.get('/', async () => ({ app: 'host' }));
  app.post('/echo', async (request) => request.body);
  await app.register(ringstore, { store, ...plugin });
  return app;
}

eventStoreContract('HTTP API mounted by the fastify plugin under a prefix', {
  open: async () => {
    const store = new MemoryEventStore();
    const app = await hostApp(store, { prefix: '/events-api' });
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    return HttpEventStore.connect(`${address}/events-api`, {
      onClose: async () => {
        await app.close();
        await store.close();
      },
    });
  },
});

describe('fastify plugin', () => {
  const apps: FastifyInstance[] = [];
  const stores: MemoryEventStore[] = [];
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
    for (const store of stores.splice(0)) await store.close();
  });

  async function mount(plugin: Record<string, unknown>): Promise<FastifyInstance> {
    const store = new MemoryEventStore();
    stores.push(store);
    const app = await hostApp(store, plugin);
    apps.push(app);
    return app;
  }

  it('keeps its routes, parsers, errors and auth inside its prefix; the host app is untouched', async () => {
    const tokens = new TokenAuthority([
      { name: 'w', sha256: sha256Hex('secret'), scopes: { '*': ['append', 'read'] } },
    ]);
    const app = await mount({ prefix: '/es', tokens });
    expect((await app.inject({ method: 'GET', url: '/' })).json()).toEqual({ app: 'host' });
    const echo = await app.inject({ method: 'POST', url: '/echo', payload: { a: 1 } });
    expect(echo.json()).toEqual({ a: 1 });
    // Host 404s keep fastify's shape; the plugin's 404s use the API's.
    expect((await app.inject({ method: 'GET', url: '/nope' })).json()).not.toHaveProperty('error.code');
    const missing = await app.inject({
      method: 'GET',
      url: '/es/v1/nope',
      headers: { authorization: 'Bearer secret' },
    });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });

    expect((await app.inject({ method: 'GET', url: '/es/health' })).statusCode).toBe(200);
    const anonymous = await app.inject({ method: 'POST', url: '/es/v1/keys' });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.json()).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    const put = await app.inject({
      method: 'POST',
      url: '/es/v1/domains/shop/aggregates/cart/1/events',
      headers: { authorization: 'Bearer secret' },
      payload: { events: [{ type: 'Added', data: { n: 1 } }] },
    });
    expect(put.statusCode).toBe(201);
  });

  it('applies its body limit to its routes only', async () => {
    const app = await mount({ prefix: '/es', bodyLimit: 2048 });
    const big = { events: [{ type: 'Added', data: { text: 'x'.repeat(4096) } }] };
    const refused = await app.inject({
      method: 'POST',
      url: '/es/v1/domains/shop/aggregates/cart/1/events',
      payload: big,
    });
    expect(refused.statusCode).toBe(413);
    expect(refused.json()).toMatchObject({ error: { code: 'PAYLOAD_TOO_LARGE' } });
    expect((await app.inject({ method: 'POST', url: '/echo', payload: big })).statusCode).toBe(200);
  });

  it('mounts without a prefix too', async () => {
    const app = await mount({});
    expect((await app.inject({ method: 'GET', url: '/health' })).json()).toMatchObject({ status: 'ok' });
    expect((await app.inject({ method: 'GET', url: '/' })).json()).toEqual({ app: 'host' });
  });

  it('refuses a missing store and server-wide options with INVALID_OPTION', async () => {
    const app = Fastify();
    apps.push(app);
    await expect(app.register(ringstore, {} as never)).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    const other = Fastify();
    apps.push(other);
    const store = new MemoryEventStore();
    stores.push(store);
    await expect(other.register(ringstore, { store, maxConnections: 5 } as never)).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      message: expect.stringContaining('maxConnections'),
    });
  });
});
