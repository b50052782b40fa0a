import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validateAggregateType, validateDomain, validateEventType } from '../../src/model/names.js';
import { PutValidator } from '../../src/model/put-validator.js';

/** A validator that remembers nothing yet: the reference for one that has seen many names. */
const validateEvents = (inputs: unknown) => new PutValidator().events(inputs);

const SEED = 20261124;

/** The outcome of a validator: its value, or the code and message of what it threw. */
function outcome(run: () => unknown): unknown {
  try {
    return { value: run() };
  } catch (error) {
    const { code, message } = error as { code?: string; message?: string };
    return { code, message };
  }
}

const name = fc.oneof(
  fc.constantFrom('bench', 'person', 'a', 'Person', '', 'x'.repeat(64), 'ok_1-2', 'bad name'),
  fc.string({ maxLength: 5 }),
  fc.constantFrom(undefined, 7, null),
);
const eventType = fc.oneof(
  fc.constantFrom('Registered', 'Moved', 'a.b:c-d_e', '1bad', '', 'T'.repeat(129), 'T'.repeat(128)),
  fc.string({ maxLength: 4 }),
  fc.constant(42),
);
const data = fc.oneof(
  fc.uint8Array({ maxLength: 8 }),
  fc.constantFrom('text', undefined, 5, new Uint8Array(65_536), new Uint8Array(65_535)),
);
const metadata = fc.oneof(
  fc.uint8Array({ maxLength: 8 }),
  fc.constantFrom('{"id":1}', undefined, 5, new Uint8Array(65_536), new Uint8Array(65_535)),
);
const event = fc.oneof(
  fc.record({ type: eventType, data }),
  fc.record({ type: eventType, data, metadata }),
  fc.record({ type: eventType, data, metadata, crc: fc.oneof(fc.integer(), fc.constant(1.5)) }),
  fc.constantFrom(null, 3, [], ['x']),
);
const events = fc.oneof(fc.array(event, { maxLength: 6 }), fc.constantFrom(undefined, 'x', {}));

describe('PutValidator', () => {
  it('gives the same events or the same error once it remembers names as a fresh validator does', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(name, name, events), { minLength: 1, maxLength: 20 }), (puts) => {
        const validator = new PutValidator();
        for (const [domain, aggregateType, inputs] of puts) {
          expect(outcome(() => validator.domain(domain))).toEqual(outcome(() => validateDomain(domain)));
          expect(outcome(() => validator.aggregateType(aggregateType))).toEqual(
            outcome(() => validateAggregateType(aggregateType)),
          );
          expect(outcome(() => validator.events(inputs))).toEqual(outcome(() => validateEvents(inputs)));
          if (Array.isArray(inputs)) {
            for (const input of inputs) {
              const type = (input as { type?: unknown } | null)?.type;
              expect(outcome(() => validator.eventType(type))).toEqual(
                outcome(() => validateEventType(type)),
              );
            }
          }
        }
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('rejects a batch over the total data limit even when every event is on the fast path', () => {
    const validator = new PutValidator();
    const big = new Uint8Array(65_535);
    const inputs = Array.from({ length: 65 }, () => ({ type: 'Moved', data: big }));
    expect(outcome(() => validator.events(inputs))).toEqual(outcome(() => validateEvents(inputs)));
    expect(outcome(() => validator.events(inputs))).toMatchObject({ code: 'BATCH_TOO_LARGE' });
  });

  it('counts metadata into the batch limit on the fast path too', () => {
    const validator = new PutValidator();
    const big = new Uint8Array(65_535);
    const inputs = Array.from({ length: 33 }, () => ({ type: 'Moved', data: big, metadata: big }));
    expect(outcome(() => validator.events(inputs))).toEqual(outcome(() => validateEvents(inputs)));
    expect(outcome(() => validator.events(inputs))).toMatchObject({ code: 'BATCH_TOO_LARGE' });
    expect(validator.events(inputs.slice(0, 32))).toHaveLength(32);
  });

  it('checks in place exactly what it checks with copies: the same events or the same error', () => {
    const normalized = (inputs: unknown) =>
      new PutValidator().putInPlace('d', 't', 1, inputs, undefined).events.map((e) => ({
        type: e.type,
        data: e.data ?? new Uint8Array(0),
        metadata: e.metadata ?? new Uint8Array(0),
        ...(e.crc === undefined ? {} : { crc: e.crc }),
      }));
    fc.assert(
      fc.property(events, (inputs) => {
        expect(outcome(() => normalized(inputs))).toEqual(outcome(() => validateEvents(inputs)));
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  it('in place: keeps the caller bytes of checked-form events, in new objects read once', () => {
    const validator = new PutValidator();
    const data = new Uint8Array([1]);
    const checked = [{ type: 'Moved', data }, { type: 'Moved' }, { type: 'Moved', data, crc: 7 }];
    const kept = validator.putInPlace('d', 't', 1, checked, undefined).events;
    expect(kept).not.toBe(checked);
    expect(kept[0]!.data).toBe(data);
    expect(kept).toEqual([{ type: 'Moved', data }, { type: 'Moved' }, { type: 'Moved', data, crc: 7 }]);
    const mixed = [
      { type: 'Moved', data },
      { type: 'Moved', data: 'text' },
      { type: 'Moved', crc: -1 },
    ];
    const events = validator.putInPlace('d', 't', 1, mixed, undefined).events;
    expect(events[0]!.data).toBe(data);
    expect(events[1]).toEqual({
      type: 'Moved',
      data: new TextEncoder().encode('text'),
      metadata: new Uint8Array(0),
    });
    expect(events[2]).toMatchObject({ crc: 0xffffffff });
  });

  it('in place: checks every event type, also after a run of one type', () => {
    const validator = new PutValidator();
    const events = [{ type: 'Moved' }, { type: 'Moved' }, { type: 'not a type!' }, { type: 'Moved' }];
    expect(() => validator.putInPlace('d', 't', 1, events, undefined)).toThrow(
      expect.objectContaining({ code: 'INVALID_NAME' }),
    );
    const types = ['Moved', 'Moved', 'Opened', 'Moved'];
    const valid = validator.putInPlace(
      'd',
      't',
      1,
      types.map((type) => ({ type })),
      undefined,
    ).events;
    expect(valid.map((e) => e.type)).toEqual(types);
  });

  it('in place: measures bytes by their real length, whatever byteLength says', () => {
    const validator = new PutValidator();
    const shadowed = new Uint8Array(70_000);
    Object.defineProperty(shadowed, 'byteLength', { value: 1 });
    class Shrinking extends Uint8Array {
      override get byteLength(): number {
        return 1;
      }
    }
    for (const data of [shadowed, new Shrinking(70_000)]) {
      expect(() => validator.putInPlace('d', 't', 1, [{ type: 'A', data }], undefined)).toThrow(
        expect.objectContaining({ code: 'EVENT_TOO_LARGE' }),
      );
    }
    // Not a typed array at all, though its prototype says so.
    const fake = Object.create(Uint8Array.prototype) as Uint8Array;
    expect(() => validator.putInPlace('d', 't', 1, [{ type: 'A', data: fake }], undefined)).toThrow(
      expect.objectContaining({ code: 'INVALID_EVENT' }),
    );
  });

  it('in place: reads each field of an event once, so what it checked is what it returns', () => {
    const validator = new PutValidator();
    const reads = { type: 0, data: 0 };
    const event = {
      get type() {
        reads.type++;
        return reads.type === 1 ? 'Moved' : 'not a valid type!';
      },
      get data() {
        reads.data++;
        return new Uint8Array(reads.data === 1 ? 1 : 70_000);
      },
    };
    const [checked] = validator.putInPlace('d', 't', 1, [event], undefined).events;
    expect(checked).toMatchObject({ type: 'Moved', data: new Uint8Array(1) });
    expect(reads).toEqual({ type: 1, data: 1 });
  });

  it('returns copies: the validated list is not the caller array', () => {
    const validator = new PutValidator();
    const inputs = [{ type: 'Moved', data: new Uint8Array([1]) }];
    const valid = validator.events(inputs);
    expect(valid).not.toBe(inputs);
    expect(valid).toEqual(validateEvents(inputs));
  });
});
