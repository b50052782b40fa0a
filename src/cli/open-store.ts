import type { EventStore } from '../api/event-store.js';
import { StorageEngine } from '../storage/storage-engine.js';
import type { ServeConfig } from './config.js';

/** Opens the store `ringstore serve` exposes, on the configured directory and durability. */
export async function openServeStore(config: Readonly<ServeConfig>): Promise<EventStore> {
  return StorageEngine.open(config.dir, { durability: config.durability });
}
