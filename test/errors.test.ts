import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOG, ERROR_CODES, fromWire, RingStoreError, versionConflict } from '../src/errors.js';

const doc = readFileSync(new URL('../docs/ERRORS.md', import.meta.url), 'utf8');
const documented = new Map(
  [...doc.matchAll(/^\|\s*`([A-Z_]+)`\s*\|\s*(\d{3})\s*\|\s*(.+?)\s*\|/gm)].map((m) => [
    m[1]!,
    { status: Number(m[2]), message: m[3] },
  ]),
);

describe('error catalog', () => {
  it('documents every code with its status and message, and nothing else', () => {
    expect([...documented.keys()].sort()).toEqual([...ERROR_CODES].sort());
    for (const code of ERROR_CODES) {
      expect(documented.get(code)).toEqual({
        status: ERROR_CATALOG[code].status,
        message: ERROR_CATALOG[code].message,
      });
    }
  });

  it('round-trips errors across a thread boundary by code and details', () => {
    const original = versionConflict(7, 3);
    const rebuilt = fromWire(structuredClone(original.toWire()));
    expect(rebuilt).toBeInstanceOf(RingStoreError);
    expect(rebuilt.code).toBe('VERSION_CONFLICT');
    expect(rebuilt.status).toBe(409);
    expect(rebuilt.details.actualVersion).toBe(7);
    expect(rebuilt.message).toBe(original.message);
  });

  it('turns unknown codes into INTERNAL', () => {
    expect(fromWire({ code: 'NOPE', message: 'x' }).code).toBe('INTERNAL');
  });
});
