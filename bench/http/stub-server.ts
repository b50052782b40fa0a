import { createHttpServer } from '../../src/api/http/server.js';
import { NullStore } from './null-store.js';

/**
 * The HTTP layer alone: `createHttpServer` (fastify, parsing, validation, metrics) over a store whose
 * put does nothing and resolves at once. Between the bare ceiling (bare-server.ts) and `ringstore
 * serve`, it shows what the HTTP layer costs apart from the store (bench/http/cpu.ts measures it).
 */
const app = await createHttpServer(new NullStore(), { logger: { level: 'info' } });
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
if (address === null || typeof address === 'string') throw new Error('no TCP address');
process.stdout.write(
  `${JSON.stringify({ msg: 'stub listening', url: `http://127.0.0.1:${address.port}` })}\n`,
);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
