import { parseArgs } from 'node:util';
import { RingStoreError } from '../errors.js';

export interface DirArgs {
  dir: string;
  json: boolean;
}

/** Parses `--dir DIR [--json]`, the arguments of the offline commands (verify, inspect). */
export function parseDirArgs(command: string, args: readonly string[]): DirArgs {
  let values: { dir?: string; json?: boolean };
  try {
    values = parseArgs({
      args: [...args],
      options: { dir: { type: 'string' }, json: { type: 'boolean' } },
    }).values;
  } catch (err) {
    throw new RingStoreError('INVALID_OPTION', (err as Error).message);
  }
  if (values.dir === undefined) throw new RingStoreError('INVALID_OPTION', `${command} needs --dir DIR`);
  return { dir: values.dir, json: values.json === true };
}
