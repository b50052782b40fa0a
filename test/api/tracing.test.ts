import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Attributes,
  type AttributeValue,
  type Span,
  type SpanOptions,
  type SpanStatus,
  SpanStatusCode,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingStore } from '../../src/api/ring-store.js';

/** What an SDK would export, kept in memory: just enough of the Span and Tracer interfaces. */
interface Recorded {
  name: string;
  attributes: Attributes;
  status: SpanStatus;
  exceptions: number;
  ended: boolean;
}

function recordingProvider(spans: Recorded[]): TracerProvider {
  const startSpan = (name: string, options: SpanOptions = {}): Span => {
    const recorded: Recorded = {
      name,
      attributes: { ...options.attributes },
      status: { code: SpanStatusCode.UNSET },
      exceptions: 0,
      ended: false,
    };
    spans.push(recorded);
    const span = {
      spanContext: () => ({ traceId: '1'.repeat(32), spanId: '1'.repeat(16), traceFlags: 1 }),
      setAttribute: (key: string, value: AttributeValue) => {
        recorded.attributes[key] = value;
        return span;
      },
      setAttributes: (attributes: Attributes) => {
        Object.assign(recorded.attributes, attributes);
        return span;
      },
      addEvent: () => span,
      addLink: () => span,
      addLinks: () => span,
      setStatus: (status: SpanStatus) => {
        recorded.status = status;
        return span;
      },
      updateName: () => span,
      end: () => {
        recorded.ended = true;
      },
      isRecording: () => true,
      recordException: () => {
        recorded.exceptions++;
      },
    } as Span;
    return span;
  };
  const tracer: Tracer = {
    startSpan,
    startActiveSpan: ((name: string, ...rest: unknown[]) => {
      const fn = rest.at(-1) as (span: Span) => unknown;
      const options = (rest.length > 1 ? rest[0] : {}) as SpanOptions;
      return fn(startSpan(name, options));
    }) as Tracer['startActiveSpan'],
  };
  return { getTracer: () => tracer };
}

describe('OpenTelemetry spans (with an SDK registered by the application)', () => {
  const spans: Recorded[] = [];
  const root = mkdtempSync(join(tmpdir(), 'ringstore-tracing-'));
  beforeAll(() => {
    expect(trace.setGlobalTracerProvider(recordingProvider(spans))).toBe(true);
  });
  afterAll(() => {
    trace.disable();
    rmSync(root, { recursive: true, force: true });
  });

  it('gives every put, get and read a span with its address and outcome, and marks failures', async () => {
    const store = await RingStore.open({ dir: join(root, 'store') });
    try {
      await store.put('billing', 'invoice', 7n, [{ type: 'Opened', data: 'x' }, { type: 'Paid' }]);
      await store.get('billing', 'invoice', 7n);
      await store.read('billing', { fromPosition: 0 });
      await expect(
        store.put('billing', 'invoice', 7n, [{ type: 'Paid' }], { expectedVersion: 0 }),
      ).rejects.toMatchObject({ code: 'VERSION_CONFLICT' });
    } finally {
      await store.close();
    }
    expect(spans.map((s) => s.name)).toEqual([
      'ringstore.put',
      'ringstore.get',
      'ringstore.read',
      'ringstore.put',
    ]);
    expect(spans.every((s) => s.ended)).toBe(true);
    expect(spans[0]!.attributes).toMatchObject({
      'ringstore.domain': 'billing',
      'ringstore.aggregate_type': 'invoice',
      'ringstore.events': 2,
      'ringstore.first_version': 1,
      'ringstore.first_position': 0,
      'ringstore.replayed': false,
    });
    expect(spans[1]!.attributes).toMatchObject({ 'ringstore.version': 2, 'ringstore.events': 2 });
    expect(spans[2]!.attributes).toMatchObject({ 'ringstore.events': 2, 'ringstore.next_position': 2 });
    expect(spans[3]!.status).toEqual({ code: SpanStatusCode.ERROR, message: 'VERSION_CONFLICT' });
    expect(spans[3]!.exceptions).toBe(1);
    expect(spans.slice(0, 3).every((s) => s.status.code === SpanStatusCode.UNSET)).toBe(true);
  });
});
