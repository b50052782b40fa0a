import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LineSplitter } from '../../src/api/http/ingest.js';

function split(chunks: readonly Buffer[], maxLineBytes: number) {
  const splitter = new LineSplitter(maxLineBytes);
  const out = chunks.flatMap((chunk) => splitter.push(chunk));
  // A line is its bytes; compared as the text they decode to.
  return [...out, ...splitter.end()].map((line) =>
    'bytes' in line ? { text: line.bytes.toString('utf8') } : line,
  );
}

/** Cuts `bytes` into chunks at the given (sorted, deduplicated) offsets. */
function cut(bytes: Buffer, offsets: readonly number[]): Buffer[] {
  const points = [...new Set(offsets.map((o) => o % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const point of points) {
    chunks.push(bytes.subarray(start, point));
    start = point;
  }
  chunks.push(bytes.subarray(start));
  return chunks;
}

describe('LineSplitter', () => {
  it('yields the same lines however the body is cut into chunks, UTF-8 split points included (seeded)', () => {
    const line = fc.string({ unit: fc.constantFrom('a', 'é', '✓', '😀', ' ', '{', '"'), maxLength: 30 });
    fc.assert(
      fc.property(
        fc.array(line, { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (lines, offsets) => {
          const body = Buffer.from(lines.map((l) => `${l}\n`).join(''), 'utf8');
          const expected = lines.filter((l) => l.trim().length > 0).map((text) => ({ text }));
          expect(split(cut(body, offsets), 1 << 20)).toEqual(expected);
        },
      ),
      { seed: 424_242, numRuns: 300 },
    );
  });

  it('reports an over-long line once, with its size so far, and keeps going', () => {
    const body = Buffer.from(`short\n${'x'.repeat(50)}\nnext\n${'y'.repeat(30)}`, 'utf8');
    for (const offsets of [[], [3, 10, 20, 40, 57], [1, 2, 3, 4, 5, 6, 7, 8, 9, 70, 80]]) {
      expect(split(cut(body, offsets), 20)).toEqual([
        { text: 'short' },
        { tooLarge: 50 },
        { text: 'next' },
        { tooLarge: 30 },
      ]);
    }
  });

  it('ignores blank lines and CRLF blank lines, keeps a last line without newline', () => {
    expect(split([Buffer.from('\n\r\n  \n{"a":1}\r\n\n[2]')], 100)).toEqual([
      { text: '{"a":1}\r' },
      { text: '[2]' },
    ]);
  });
});
