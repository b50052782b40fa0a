import { realFileIO } from '../storage/file-io.js';
import { runWriterThread } from './writer-thread.js';

/** The writer thread's entry point: the writer thread body with the real file I/O. */
await runWriterThread(realFileIO);
