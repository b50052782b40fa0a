import { describe, expect, it } from 'vitest';
import { waitForPosition } from '../../src/api/wait-position.js';
import { MemoryEventStore } from '../../src/model/memory-store.js';

describe('waitForPosition on a store that holds everything it acknowledged', () => {
  it('returns at once for a position the domain holds and fails at once past its end', async () => {
    const store = new MemoryEventStore();
    await store.put('d', 'a', 1, [{ type: 'A' }, { type: 'B' }]);
    await waitForPosition(store, 'd', 1);
    await expect(waitForPosition(store, 'd', 2)).rejects.toMatchObject({
      code: 'APPLY_TIMEOUT',
      status: 504,
    });
    await expect(waitForPosition(store, 'empty', 0)).rejects.toMatchObject({ code: 'APPLY_TIMEOUT' });
  });
});
