import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { eventCrc } from '../../src/model/events.js';
import { decodeGenerationMessage, encodeGenerationMessage } from '../../src/storage/generation-message.js';
import type { AppendBatch } from '../../src/storage/types.js';

const SEED = Number(process.env.RINGSTORE_SEED ?? 20_261_202);

const event = fc
  .record({
    type: fc.constantFrom('A', 'Opened', 'x.y:z'),
    data: fc.uint8Array({ maxLength: 64 }),
    metadata: fc.uint8Array({ maxLength: 16 }),
  })
  .map((e) => ({ ...e, crc: eventCrc(e) }));

const batch = fc.record({
  aggregateType: fc.constantFrom('order', 'acct'),
  aggregateId: fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }),
  expectedVersion: fc.oneof(
    fc.nat({ max: 1_000_000 }),
    fc.constantFrom<'any' | 'none' | 'exists'>('any', 'none', 'exists'),
  ),
  idempotencyKey: fc.option(fc.string({ minLength: 1, maxLength: 8 }), { nil: undefined }),
  events: fc.array(event, { minLength: 1, maxLength: 4 }),
});

describe(`generation message codec (seed ${SEED})`, () => {
  it('decodes what it encodes', () => {
    fc.assert(
      fc.property(fc.array(batch, { minLength: 1, maxLength: 5 }), fc.nat(), (batches, timestamp) => {
        const full: AppendBatch[] = batches.map((b) => ({ ...b, domain: 'billing' }));
        const message = { domain: 'billing', node: 'a', id: 'm-1', timestamp, batches: full };
        const decoded = decodeGenerationMessage(encodeGenerationMessage(message));
        expect(decoded).toEqual(message);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  it('refuses a message with any payload byte changed, or cut short', () => {
    fc.assert(
      fc.property(batch, fc.nat(), fc.integer({ min: 1, max: 255 }), (b, at, flip) => {
        const message = { domain: 'd', node: 'a', id: 'm', timestamp: 1, batches: [{ ...b, domain: 'd' }] };
        const bytes = encodeGenerationMessage(message);
        const headerEnd = 4 + new DataView(bytes.buffer).getUint32(0);
        fc.pre(bytes.byteLength > headerEnd);
        const damaged = bytes.slice();
        const i = headerEnd + (at % (bytes.byteLength - headerEnd));
        damaged[i] = damaged[i]! ^ flip;
        expect(() => decodeGenerationMessage(damaged)).toThrow(
          expect.objectContaining({ code: 'CORRUPT_DATA' }),
        );
        expect(() => decodeGenerationMessage(bytes.subarray(0, bytes.byteLength - 1))).toThrow(
          expect.objectContaining({ code: 'CORRUPT_DATA' }),
        );
      }),
      { seed: SEED, numRuns: 200 },
    );
  });
});
