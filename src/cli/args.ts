import { type ParseArgsConfig, parseArgs } from 'node:util';
import { RingStoreError } from '../errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * node:util parseArgs with strict checking and one-line INVALID_OPTION errors in the CLI's words
 * ("unknown option --frob", "--dir needs a value", "unexpected argument x"); a repeated option
 * keeps its last value (so `npm start -- --dir X` overrides the script's own --dir).
 */
export function parseOptions<T extends Options>(
  command: string,
  args: readonly string[],
  options: T,
): Record<string, string | boolean | undefined> {
  try {
    return parseArgs({ args: [...args], options, strict: true, allowPositionals: false }).values as Record<
      string,
      string | boolean | undefined
    >;
  } catch (err) {
    throw new RingStoreError(
      'INVALID_OPTION',
      `${describeParseError(err as NodeJS.ErrnoException)} (see ringstore ${command} --help)`,
    );
  }
}

function describeParseError(err: NodeJS.ErrnoException): string {
  const quoted = /'([^']*)'/.exec(err.message)?.[1];
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${quoted ?? ''}`.trim();
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${JSON.stringify(quoted ?? '')}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const flag = /(--[a-z-]+)/.exec(err.message)?.[1];
      if (flag && /argument missing/.test(err.message)) return `${flag} needs a value`;
      // The next argument starts with a dash: a forgotten value, or a negative one.
      if (flag && /ambiguous/.test(err.message)) {
        return `${flag} needs a value (one that starts with a dash is written ${flag}=-…)`;
      }
      return `${flag ?? 'an option'} takes no value`;
    }
    default:
      return (err.message ?? String(err)).split('\n')[0] as string;
  }
}
