import { isMainThread } from 'node:worker_threads';
import { announceThisThread } from './thread-roles.js';

/** Loaded with `--import` into a case child and so into each of its worker threads: see thread-roles.ts. */
if (!isMainThread) announceThisThread();
