import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const projectRoot = fileURLToPath(new URL('../../', import.meta.url));
const compiledRoot = projectRoot.endsWith('/dist/') ? projectRoot : `${projectRoot}dist/`;

/**
 * Resolves a worker entry point as the compiled `.js` file beside the calling module. Node 20 cannot
 * load `.ts` in worker threads, so when the caller runs from source (vitest), the same relative
 * path is looked up under dist/ instead: run `npm run build` first (npm test does).
 */
export function compiledWorkerUrl(relative: string, callerUrl: string): URL {
  const beside = new URL(relative, callerUrl);
  const besidePath = fileURLToPath(beside);
  if (besidePath.endsWith('.js') && existsSync(besidePath) && !callerUrl.endsWith('.ts')) return beside;
  if (!besidePath.startsWith(projectRoot)) return beside;
  const fromDist = `${compiledRoot}${besidePath.slice(projectRoot.length)}`;
  return pathToFileURL(fromDist);
}
