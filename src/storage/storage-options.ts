import { RingStoreError } from '../errors.js';

/**
 * The storage layer's own check of its numeric options (StorageWriter, StorageReader), for callers
 * that reach it without RingStore's bounds (RING_STORE_BOUNDS): INVALID_OPTION names the option.
 */
export function integerOption(
  option: string,
  value: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (!(Number.isSafeInteger(value) && value >= min && value <= max)) {
    throw new RingStoreError('INVALID_OPTION', `${option} must be an integer from ${min} to ${max}`, {
      option,
    });
  }
  return value;
}
