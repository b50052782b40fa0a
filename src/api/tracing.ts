import { type Attributes, SpanStatusCode, trace } from '@opentelemetry/api';
import { packageVersion } from './package-version.js';

/**
 * OpenTelemetry spans through `@opentelemetry/api` only: without an SDK registered by the
 * application they are no-ops (about 0.3 µs per call measured here); with one, every put, get and
 * read of a RingStore is a span `ringstore.<operation>` with its address and outcome.
 */
const tracer = trace.getTracer('ringstore', packageVersion());

/** Runs `operation` inside the span `ringstore.<name>`; a failure sets the span's error status. */
export function traced<T>(
  name: string,
  attributes: Attributes,
  operation: () => Promise<T>,
  onResult?: (result: T) => Attributes,
): Promise<T> {
  return tracer.startActiveSpan(`ringstore.${name}`, { attributes }, async (span) => {
    try {
      const result = await operation();
      if (onResult) span.setAttributes(onResult(result));
      return result;
    } catch (err) {
      const code = (err as { code?: unknown })?.code;
      span.setStatus({ code: SpanStatusCode.ERROR, message: typeof code === 'string' ? code : String(err) });
      if (err instanceof Error) span.recordException(err);
      throw err;
    } finally {
      span.end();
    }
  });
}
