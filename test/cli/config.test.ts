import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isLoopback, parseServeConfig } from '../../src/cli/config.js';

const invalid = expect.objectContaining({ code: 'INVALID_OPTION' });

describe('ringstore serve configuration', () => {
  it('has safe defaults', () => {
    expect(parseServeConfig([], {})).toEqual({
      host: '127.0.0.1',
      port: 8080,
      dir: resolve('./data'),
      durability: 'fsync',
      crcThreads: undefined,
      ringBytes: undefined,
      backpressureTimeoutMs: undefined,
      indexCacheBytes: undefined,
      instanceCacheSize: undefined,
      tokens: undefined,
      insecure: false,
      console: true,
      bodyLimit: 1024 * 1024,
      logLevel: 'info',
    });
  });

  it('takes flags over RINGSTORE_* variables over defaults', () => {
    const env = {
      RINGSTORE_PORT: '9000',
      RINGSTORE_DURABILITY: 'write',
      RINGSTORE_RING_BYTES: '65536',
      RINGSTORE_CRC_THREADS: '0',
      RINGSTORE_INDEX_CACHE_BYTES: '0',
      RINGSTORE_INSTANCE_CACHE_SIZE: '500',
    };
    const fromEnv = parseServeConfig([], env);
    expect(fromEnv).toMatchObject({
      port: 9000,
      durability: 'write',
      ringBytes: 65_536,
      crcThreads: 0,
      indexCacheBytes: 0,
      instanceCacheSize: 500,
    });
    const fromFlags = parseServeConfig(
      ['--port', '0', '--durability', 'none', '--dir', '/tmp/x', '--body-limit', '2048'],
      env,
    );
    expect(fromFlags).toMatchObject({
      port: 0,
      durability: 'none',
      dir: '/tmp/x',
      bodyLimit: 2048,
      ringBytes: 65_536,
    });
  });

  it('rejects bad values with INVALID_OPTION', () => {
    const bad: string[][] = [
      ['--port', '-1'],
      ['--port', '65536'],
      ['--port', 'http'],
      ['--durability', 'sometimes'],
      ['--ring-bytes', '100000'],
      ['--ring-bytes', '1024'],
      ['--crc-threads', '1.5'],
      ['--body-limit', '10'],
      ['--index-cache-bytes', '-1'],
      ['--instance-cache-size', '0'],
      ['--log-level', 'loud'],
      ['--unknown'],
      ['positional'],
      ['--host', ''],
    ];
    for (const args of bad) expect(() => parseServeConfig(args, {}), args.join(' ')).toThrow(invalid);
    expect(() => parseServeConfig([], { RINGSTORE_PORT: 'x' })).toThrow(invalid);
    // A value from a variable is named by the variable, one from a flag by the flag.
    expect(() => parseServeConfig([], { RINGSTORE_PORT: 'abc' })).toThrow(
      /^RINGSTORE_PORT \(--port\) must be/,
    );
    expect(() => parseServeConfig(['--port', 'abc'], { RINGSTORE_PORT: '1' })).toThrow(/^--port must be/);
    expect(() => parseServeConfig([], { RINGSTORE_DURABILITY: 'maybe' })).toThrow(/^RINGSTORE_DURABILITY/);
    // An empty RINGSTORE_DIR would have meant the current directory.
    expect(() => parseServeConfig([], { RINGSTORE_DIR: '' })).toThrow(
      /RINGSTORE_DIR \(--dir\) must not be empty/,
    );
    expect(() => parseServeConfig([], { RINGSTORE_INSECURE: 'maybe' })).toThrow(invalid);
  });

  it('refuses a non-loopback host without tokens unless --insecure', () => {
    expect(() => parseServeConfig(['--host', '0.0.0.0'], {})).toThrow(/refusing to listen/);
    expect(() => parseServeConfig(['--host', '192.168.1.5'], {})).toThrow(invalid);
    expect(parseServeConfig(['--host', '0.0.0.0', '--tokens', 'tokens.json'], {}).host).toBe('0.0.0.0');
    expect(parseServeConfig(['--host', '0.0.0.0', '--insecure'], {}).insecure).toBe(true);
    expect(parseServeConfig(['--host', '0.0.0.0'], { RINGSTORE_INSECURE: '1' }).insecure).toBe(true);
    expect(parseServeConfig(['--host', 'localhost'], {}).host).toBe('localhost');
  });

  it('serves the web console unless --no-console or RINGSTORE_NO_CONSOLE', () => {
    expect(parseServeConfig(['--no-console'], {}).console).toBe(false);
    expect(parseServeConfig([], { RINGSTORE_NO_CONSOLE: 'true' }).console).toBe(false);
    expect(parseServeConfig([], { RINGSTORE_NO_CONSOLE: '0' }).console).toBe(true);
    expect(() => parseServeConfig([], { RINGSTORE_NO_CONSOLE: 'yes' })).toThrow(
      /RINGSTORE_NO_CONSOLE must be/,
    );
  });

  it('knows loopback addresses', () => {
    expect(['127.0.0.1', '127.1.2.3', '::1', 'localhost'].map(isLoopback)).toEqual([true, true, true, true]);
    expect(['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', 'example.com'].map(isLoopback)).toEqual([
      false,
      false,
      false,
      false,
      false,
    ]);
  });
});
