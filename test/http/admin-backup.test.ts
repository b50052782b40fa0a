import { describe, expect, it } from 'vitest';
import { streamBackup } from '../../src/api/http/admin-backup.js';
import { RingStoreError } from '../../src/errors.js';

/** A store whose backup fails with `error`. */
function failingBackup(error: Error) {
  return {
    backup: async (): Promise<never> => {
      throw error;
    },
  };
}

async function run(error: Error): Promise<{ lines: unknown[]; logged: unknown[] }> {
  const lines: unknown[] = [];
  const logged: unknown[] = [];
  await streamBackup(
    failingBackup(error),
    { to: '/backups/x', link: true },
    (line) => lines.push(JSON.parse(line)),
    (err) => logged.push(err),
  );
  return { lines, logged };
}

describe('streamBackup', () => {
  it("answers the caller's own errors without logging them", async () => {
    const { lines, logged } = await run(new RingStoreError('TARGET_EXISTS', '/backups/x already exists'));
    expect(lines).toEqual([{ error: expect.objectContaining({ code: 'TARGET_EXISTS' }) }]);
    expect(logged).toEqual([]);
  });

  it('logs a server-side failure with its cause and answers only the catalog message', async () => {
    const cause = new Error('EIO: i/o error, write /var/lib/ringstore/d/index');
    const { lines, logged } = await run(cause);
    expect(lines).toEqual([{ error: { code: 'INTERNAL', message: 'internal error' } }]);
    expect(logged).toEqual([cause]);
  });

  it('does not log a store that is closing (STORE_CLOSED), as the routes do not', async () => {
    const { lines, logged } = await run(new RingStoreError('STORE_CLOSED'));
    expect(lines).toEqual([{ error: expect.objectContaining({ code: 'STORE_CLOSED' }) }]);
    expect(logged).toEqual([]);
  });
});
