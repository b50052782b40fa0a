import { type Attributes, context, type Span, SpanStatusCode, trace } from '@opentelemetry/api';
import { packageVersion } from './package-version.js';

/**
 * OpenTelemetry spans through `@opentelemetry/api` only: with an SDK registered by the application,
 * every put, get and read of a RingStore is a span `ringstore.<operation>` with its address and
 * outcome. Without one, the tracer hands out a non-recording span, and the operation runs as it is:
 * no attributes built, no extra promise or context switch per call.
 */
const tracer = trace.getTracer('ringstore', packageVersion());

/**
 * Runs `operation` inside the span `ringstore.<name>` (the active span while it runs); a failure
 * sets the span's error status. `attributes` is called only when the span records.
 */
export function traced<T>(
  name: string,
  attributes: () => Attributes,
  operation: () => Promise<T>,
  onResult?: (result: T) => Attributes,
): Promise<T> {
  const span = tracer.startSpan(`ringstore.${name}`);
  if (!span.isRecording()) return operation();
  span.setAttributes(attributes());
  return context.with(trace.setSpan(context.active(), span), () => recorded(span, operation, onResult));
}

async function recorded<T>(
  span: Span,
  operation: () => Promise<T>,
  onResult: ((result: T) => Attributes) | undefined,
): Promise<T> {
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
}
