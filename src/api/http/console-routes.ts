import type { FastifyInstance } from 'fastify';
import { type ConsoleFile, loadConsoleFiles } from './console-files.js';

/**
 * The web console's policy: its own scripts, styles and API only. No inline script or style, no
 * other origin (the files are served from the package: no CDN), no framing, no plugins.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'none'",
].join('; ');

/** The console's route patterns (relative to the app's prefix): they need no token. */
export const CONSOLE_ROUTES = ['/ui', '/ui/*'] as const;

let cached: ReadonlyMap<string, ConsoleFile> | undefined;

/**
 * GET /ui: the web console (ui/index.html and its modules). The page itself holds no data: it asks
 * the API for everything, with the token the user gives it, so serving its files needs no token.
 */
export function mountConsoleRoutes(app: FastifyInstance): void {
  cached ??= loadConsoleFiles();
  const files = cached;
  // `/ui` → `/ui/`, so the page's relative URLs (`js/…`, `../v1/…`) resolve below the prefix.
  app.get('/ui', async (request, reply) => {
    const path = request.url.split('?')[0] as string;
    return reply.redirect(`${path}/`, 308);
  });
  app.get<{ Params: { '*': string } }>('/ui/*', async (request, reply) => {
    const name = request.params['*'] === '' ? 'index.html' : request.params['*'];
    const file = files.get(name);
    if (!file) return reply.callNotFound();
    reply
      .header('content-security-policy', CONSOLE_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', 'no-cache')
      .type(file.contentType);
    return file.body;
  });
}
