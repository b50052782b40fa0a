import { RingStoreError } from '../errors.js';
import { parseOptions } from './args.js';
import { checkStoreDirectory } from './store-dir.js';

export interface DirArgs {
  dir: string;
  json: boolean;
}

/**
 * Parses `--dir DIR [--json]`, the arguments of the offline commands (verify, inspect), and checks
 * that DIR is a store directory (they never create one).
 */
export function parseDirArgs(command: string, args: readonly string[]): DirArgs {
  const values = parseOptions(command, args, { dir: { type: 'string' }, json: { type: 'boolean' } });
  if (typeof values.dir !== 'string' || values.dir.length === 0) {
    throw new RingStoreError(
      'INVALID_OPTION',
      `${command} needs --dir DIR (see ringstore ${command} --help)`,
    );
  }
  checkStoreDirectory(values.dir, { mayCreate: false });
  return { dir: values.dir, json: values.json === true };
}

export function dirUsage(command: string, what: string): string {
  return `usage: ringstore ${command} --dir DIR [--json]

${what}

options:
  --dir DIR     the data directory (required; must exist and be a ringstore store)
  --json        print the result as JSON
  -h, --help    show this help
`;
}
