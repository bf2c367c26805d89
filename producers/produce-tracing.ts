import { trace, type Context } from '@opentelemetry/api';
import type { FastifyRequest } from 'fastify';
import { requestTraceContext } from '../core/http-tracing.ts';
import { endSpanWithError, startSendSpan, traceHeaders } from '../core/tracing.ts';
import type { RecordAck } from './batching-producer.ts';

/** What a record carries when tracing is off: nothing (shared, never written to). */
export const NO_TRACE_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/**
 * Runs one request's produce inside a PRODUCER span (`send <topic>`) under the
 * request's span, handing `produce` the `traceparent`/`tracestate` headers of
 * that span for its records, so the worker that reads them continues the
 * trace. With tracing off it calls `produce` straight away.
 */
export function traceProduce(request: FastifyRequest, topic: string, count: number, produce: (headers: Readonly<Record<string, string>>) => Promise<RecordAck[]>): Promise<RecordAck[]> {
  const parent = requestTraceContext(request);
  // Not async on this path: no extra promise when tracing is off.
  if (parent === undefined) return produce(NO_TRACE_HEADERS);
  return produceInSpan(parent, topic, count, produce);
}

async function produceInSpan(parent: Context, topic: string, count: number, produce: (headers: Readonly<Record<string, string>>) => Promise<RecordAck[]>): Promise<RecordAck[]> {
  const span = startSendSpan(parent, { destination: topic, count });
  try {
    const acks = await produce(traceHeaders(trace.setSpan(parent, span)));
    const [only] = acks;
    if (acks.length === 1 && only) span.setAttributes({ 'messaging.destination.partition.id': String(only.partition), 'messaging.kafka.offset': Number(only.offset) });
    span.end();
    return acks;
  } catch (error) {
    endSpanWithError(span, error);
    throw error;
  }
}
