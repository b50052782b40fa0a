import type { FileIO } from '../storage/file-io.js';

/**
 * Test hook for the writer thread: a fault plan travels in workerData (plain data, since a FileIO
 * object cannot cross threads) and wraps the real file I/O here.
 */
export interface WriterFaultPlan {
  /** fsync/fdatasync calls that succeed before every later one throws EIO. */
  failSyncAfter?: number;
}

export function withWriterFaults(io: FileIO, plan: WriterFaultPlan | undefined): FileIO {
  const allowed = plan?.failSyncAfter;
  if (allowed === undefined) return io;
  let syncs = 0;
  const sync = (operation: string, run: () => void) => {
    if (syncs++ >= allowed) {
      throw Object.assign(new Error(`EIO: injected i/o error, ${operation}`), { code: 'EIO' });
    }
    run();
  };
  return {
    ...io,
    fsync: (fd) => sync('fsync', () => io.fsync(fd)),
    fdatasync: (fd) => sync('fdatasync', () => io.fdatasync(fd)),
    fdatasyncAsync: (fd) => {
      try {
        sync('fdatasync', () => undefined);
      } catch (err) {
        return Promise.reject(err);
      }
      return io.fdatasyncAsync(fd);
    },
    fsyncDir: (path) => sync('fsyncDir', () => io.fsyncDir(path)),
  };
}
