import type { FastifyInstance } from 'fastify';
import { MalformedBodyError, ValidationError, type FieldViolation } from '../core/errors.ts';
import type { Codec, SchemaType } from '../core/formats/index.ts';
import { frame } from '../core/wire-format.ts';
import type { RouteSpec } from '../topology/model.ts';
import type { OutgoingRecord, RecordHeaders } from '../kafka/types.ts';
import type { BatchingProducer } from './batching-producer.ts';
import { isParsedBody } from './body-parsers.ts';
import { NO_TRACE_HEADERS, traceProduce } from './produce-tracing.ts';

/** What a route needs at request time: its topic's codec (Avro, JSON Schema or Protobuf) and registered schema id. */
export interface RouteBinding {
  readonly route: RouteSpec;
  readonly subject: string;
  readonly schemaId: number;
  readonly codec: Codec;
}

export const CORRELATION_HEADER = 'correlation-id';
/** The `content-type` header of produced records, by the value's format. */
export const VALUE_CONTENT_TYPES: Record<SchemaType, string> = {
  AVRO: 'application/vnd.sluice.avro',
  JSON: 'application/vnd.sluice.json',
  PROTOBUF: 'application/vnd.sluice.protobuf',
};

export interface ProduceResult {
  topic: string;
  partition: number;
  offset: string;
  schemaId: number;
}

/**
 * Validates every event before anything is produced: one bad event refuses
 * the whole batch, so a caller never has to work out which half was written.
 */
export function checkEvents(codec: Pick<Codec, 'validate'>, events: unknown[], batch: boolean): void {
  const violations: FieldViolation[] = [];
  let badEvents = 0;
  events.forEach((event, index) => {
    const found = codec.validate(event);
    if (found.length > 0) badEvents += 1;
    for (const v of found) violations.push(batch ? { index, path: v.path, message: v.message } : v);
  });
  if (violations.length === 0) return;
  const first = violations[0]!;
  const where = `${first.index === undefined ? '' : `[${first.index}] `}${first.path || '(root)'}: ${first.message}`;
  throw new ValidationError(violations, batch ? `${badEvents} of ${events.length} events are invalid, so none was produced; first: ${where}` : where);
}

export const PRINCIPAL_HEADER = 'sluice.principal';
const CONTENT_TYPE_VALUES: Record<SchemaType, Buffer> = {
  AVRO: Buffer.from(VALUE_CONTENT_TYPES.AVRO),
  JSON: Buffer.from(VALUE_CONTENT_TYPES.JSON),
  PROTOBUF: Buffer.from(VALUE_CONTENT_TYPES.PROTOBUF),
};

export function toRecords(binding: RouteBinding, events: unknown[], correlationId: string, trace: Readonly<Record<string, string>> = NO_TRACE_HEADERS, principal?: string): OutgoingRecord[] {
  // One header list for the request's records (the producer only reads it). Who produced
  // travels with each record, so workers, dead letters and audits know.
  const headers: RecordHeaders = [
    ...Object.entries(trace).map(([name, value]) => [name, Buffer.from(value)] as const),
    [CORRELATION_HEADER, Buffer.from(correlationId)],
    ['content-type', CONTENT_TYPE_VALUES[binding.codec.schemaType]],
    ...(principal === undefined ? [] : [[PRINCIPAL_HEADER, Buffer.from(principal)] as const]),
  ];
  return events.map((event) => {
    const keyValue = (event as Record<string, unknown>)[binding.route.key];
    return {
      topic: binding.route.topic,
      // No key: the seam spreads records round-robin.
      key: keyValue === null || keyValue === undefined ? null : Buffer.from(String(keyValue), 'utf8'),
      value: frame(binding.schemaId, binding.codec.encode(event)),
      headers,
    };
  });
}

export function registerRoutes(app: FastifyInstance, bindings: RouteBinding[], producer: BatchingProducer): void {
  for (const binding of bindings) {
    app.post(binding.route.path, async (request, reply) => {
      // Fastify skips content-type parsers for an absent body; treat it as malformed, not as an event.
      if (!isParsedBody(request.body)) throw new MalformedBodyError('body is empty; expected a JSON object (one event) or array (a batch)');
      const { events, batch } = request.body;
      checkEvents(binding.codec, events, batch);
      const acks = await traceProduce(request, binding.route.topic, events.length, (trace) => producer.produce(toRecords(binding, events, request.id, trace, request.principal?.name)));
      const results: ProduceResult[] = acks.map((ack) => ({ ...ack, schemaId: binding.schemaId }));
      request.log.debug({ topic: binding.route.topic, count: results.length }, 'events produced');
      return reply.code(200).send(batch ? { results } : results[0]);
    });
  }
}
