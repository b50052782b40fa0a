import { describe, expect, it, vi } from 'vitest';
import { CommitWatchers } from '../../src/model/commit-watchers.js';
import { MemoryEventStore } from '../../src/model/memory-store.js';

describe('CommitWatchers', () => {
  it('notifies until unsubscribed, isolates a throwing listener, and sends one closed notice', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const watchers = new CommitWatchers();
    const seen: unknown[] = [];
    watchers.add(() => {
      throw new Error('listener bug');
    });
    const stop = watchers.add((n) => seen.push(n));
    watchers.notify({ generation: 1, domains: ['d'] });
    stop();
    watchers.notify({ generation: 2, domains: ['d'] });
    const last = vi.fn();
    watchers.add(last);
    watchers.close(2);
    watchers.notify({ generation: 3, domains: ['d'] });
    expect(seen).toEqual([{ generation: 1, domains: ['d'] }]);
    expect(last).toHaveBeenCalledTimes(1);
    expect(last).toHaveBeenCalledWith({ generation: 2, domains: [], closed: true });
    expect(watchers.size).toBe(0);
    expect(warn).toHaveBeenCalled();
    warn.mockRestore();
  });

  it('a throwing watcher does not fail the put that triggered it', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const store = new MemoryEventStore();
    store.watch(() => {
      throw new Error('listener bug');
    });
    await expect(store.put('d', 'a', 1n, [{ type: 'A' }])).resolves.toMatchObject({ firstVersion: 1 });
    warn.mockRestore();
  });
});
