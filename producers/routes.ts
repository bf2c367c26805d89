import type { FastifyInstance } from 'fastify';
import { BadRequestError, IdempotencyKeyError, MalformedBodyError, ValidationError, type FieldViolation } from '../core/errors.ts';
import type { Codec, SchemaType } from '../core/formats/index.ts';
import { encodeFramed } from '../core/wire-format.ts';
import type { RouteSpec } from '../topology/model.ts';
import type { OutgoingRecord, RecordHeaders } from '../kafka/index.ts';
import type { BatchingProducer, RecordAck } from './batching-producer.ts';
import { requestTraceContext } from '../core/http-tracing.ts';
import { isReceivedBody, type ReceivedBody } from './body-parsers.ts';
import { NO_TRACE_HEADERS, traceProduce } from './produce-tracing.ts';
import { runWriteRules, type RuleResults, type SubjectContract, type SubjectContracts } from '../rules/index.ts';
import { prepareWithRules, ruleRefusal, type RuleRoute } from './contract-rules.ts';
import { fingerprint, parseIdempotencyKey, scopeOf, type Idempotency, type PreparedProduce, type StoredResponse } from './idempotency.ts';

/** What a route needs at request time: its topic's codec (Avro, JSON Schema or Protobuf) and registered schema id. */
export interface RouteBinding {
  readonly route: RouteSpec;
  readonly subject: string;
  readonly schemaId: number;
  readonly codec: Codec;
  /** The schema's text as the topology gives it: how the route finds its version (and rules) in the registry. */
  readonly schemaText?: string;
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

type TraceHeaders = Readonly<Record<string, string>>;

export const PRINCIPAL_HEADER = 'sluice.principal';
/** Whose idempotency keys a request without a principal (an open laptop ingress) uses: access/plugin.ts puts the signed-in one on the request. */
const ANONYMOUS = 'anonymous';
const CONTENT_TYPE_VALUES: Record<SchemaType, Buffer> = {
  AVRO: Buffer.from(VALUE_CONTENT_TYPES.AVRO),
  JSON: Buffer.from(VALUE_CONTENT_TYPES.JSON),
  PROTOBUF: Buffer.from(VALUE_CONTENT_TYPES.PROTOBUF),
};

/** The headers every record of one request carries: trace context, correlation id, content type, and who produced it. */
export function recordHeaders(binding: RouteBinding, correlationId: string, trace: Readonly<Record<string, string>> = NO_TRACE_HEADERS, principal?: string): RecordHeaders {
  return [
    ...Object.entries(trace).map(([name, value]) => [name, Buffer.from(value)] as const),
    [CORRELATION_HEADER, Buffer.from(correlationId)],
    ['content-type', CONTENT_TYPE_VALUES[binding.codec.schemaType]],
    ...(principal === undefined ? [] : [[PRINCIPAL_HEADER, Buffer.from(principal)] as const]),
  ];
}

export function toRecords(binding: RouteBinding, events: unknown[], correlationId: string, trace: Readonly<Record<string, string>> = NO_TRACE_HEADERS, principal?: string): OutgoingRecord[] {
  // One header list for the request's records (the producer only reads it). Who produced
  // travels with each record, so workers, dead letters and audits know.
  const headers = recordHeaders(binding, correlationId, trace, principal);
  return events.map((event) => {
    const keyValue = (event as Record<string, unknown>)[binding.route.key];
    return {
      topic: binding.route.topic,
      // No key: the seam spreads records round-robin.
      key: keyValue === null || keyValue === undefined ? null : Buffer.from(String(keyValue), 'utf8'),
      value: encodeFramed(binding.codec, binding.schemaId, event),
      headers,
    };
  });
}

/** What Fastify sends for an object body: the fast path's text answers say the same. */
export const JSON_BODY = 'application/json; charset=utf-8';

let lastTopic = '';
let lastTopicJson = '""';

/**
 * prepareAtomic's answer as JSON text, written directly: `{"topic":…,"partition":…,"offset":"…","schemaId":…}`
 * for one event, `{"results":[…]}` for a batch, byte for byte what JSON.stringify makes of the answer objects.
 */
export function atomicAnswerText(acks: readonly RecordAck[], schemaId: number, batch: boolean): string {
  let out = batch ? '{"results":[' : '';
  for (let i = 0; i < acks.length; i++) {
    const ack = acks[i]!;
    if (ack.topic !== lastTopic) {
      lastTopic = ack.topic;
      lastTopicJson = JSON.stringify(ack.topic);
    }
    // Offsets are decimal digits and partitions and ids integers: nothing in them needs escaping.
    out += `${i === 0 ? '' : ','}{"topic":${lastTopicJson},"partition":${ack.partition},"offset":"${ack.offset}","schemaId":${schemaId}}`;
  }
  return batch ? `${out}]}` : out;
}

/** Where one event of a `?partial=true` batch went: written (its place) or refused (its errors, by field path). */
export type PartialResult =
  ({ index: number; status: 200 } & ProduceResult) | { index: number; status: 400; error: string; message: string; path: string; errors: { path: string; message: string }[] };

/** `?partial=true|false`; anything else is a 400 naming the parameter. */
export function parsePartial(query: unknown): boolean {
  const value = (query as Record<string, unknown> | undefined)?.partial;
  if (value === undefined || value === 'false') return false;
  if (value === 'true') return true;
  throw new BadRequestError(`partial: expected true or false, got ${JSON.stringify(value)}`);
}

/**
 * All or nothing (the default): one invalid event refuses the batch (400) before anything is written.
 * `checked`: the caller has already run checkEvents (the route does, before its produce span), so the
 * events are not validated twice on the hot path.
 */
export function prepareAtomic(
  binding: RouteBinding,
  events: unknown[],
  batch: boolean,
  correlationId: string,
  trace: TraceHeaders = NO_TRACE_HEADERS,
  principal?: string,
  checked = false,
): PreparedProduce {
  if (!checked) checkEvents(binding.codec, events, batch);
  return {
    records: toRecords(binding, events, correlationId, trace, principal),
    answer(acks) {
      const results: ProduceResult[] = acks.map((ack) => ({ ...ack, schemaId: binding.schemaId }));
      return { status: 200, body: batch ? { results } : results[0] };
    },
  };
}

/**
 * `?partial=true`: the valid events are written (together, in one produce), the
 * invalid ones are reported, and the answer is always 207 with one result per
 * index, even when every event was valid or none was: a client reads one shape.
 */
export function preparePartial(binding: RouteBinding, events: unknown[], correlationId: string, trace: TraceHeaders = NO_TRACE_HEADERS, principal?: string): PreparedProduce {
  const violations = events.map((event) => binding.codec.validate(event));
  const valid = violations.flatMap((found, index) => (found.length === 0 ? [index] : []));
  return {
    records: toRecords(
      binding,
      valid.map((index) => events[index]),
      correlationId,
      trace,
      principal,
    ),
    answer(acks) {
      const results: PartialResult[] = new Array(events.length);
      valid.forEach((index, i) => {
        results[index] = { index, status: 200, ...acks[i]!, schemaId: binding.schemaId };
      });
      violations.forEach((found, index) => {
        if (found.length === 0) return;
        const first = found[0]!;
        results[index] = {
          index,
          status: 400,
          error: 'SLUICE_VALIDATION_FAILED',
          message: `${first.path || '(root)'}: ${first.message}`,
          path: first.path,
          errors: found.map((v) => ({ path: v.path, message: v.message })),
        };
      });
      return { status: 207, body: { produced: valid.length, failed: events.length - valid.length, results } };
    },
  };
}

/** The route's binding with the schema id of its current contract (a newer version of the subject), when it has one. */
export function currentBinding(binding: RouteBinding, current: SubjectContract | undefined): RouteBinding {
  return current === undefined || current.schemaId === binding.schemaId ? binding : { ...binding, schemaId: current.schemaId };
}

export interface ProduceContext {
  producer: Pick<BatchingProducer, 'produce'>;
  /** The Idempotency-Key path; without it the header is refused. */
  idempotency?: Idempotency;
  /** Each route's current data contract (contract-rules.ts); without it, no rules run. */
  contracts?: Pick<SubjectContracts<RuleRoute>, 'of'>;
}

/** A produce request's answer: its status, its JSON text, and whether it replays what the key's first request was answered. */
export interface ProduceAnswer {
  status: number;
  text: string;
  replayed?: true;
}

/** A produce request apart from its body: what the route and the direct path (direct-produce.ts) read from its head. */
export interface ProduceRequest {
  /** The correlation id, which the records carry. */
  id: string;
  /** The Idempotency-Key, parsed (parseIdempotencyKey). */
  key: string | undefined;
  principal: string | undefined;
  partial: boolean;
  /** With tracing on: the produce in a span under the request's (produce-tracing.ts), given the span's headers for the records. */
  traced?: (produce: (trace: TraceHeaders) => Promise<RecordAck[]>) => Promise<RecordAck[]>;
  /** Told how many events an unkeyed request wrote (the debug line); absent when nobody listens. */
  produced?: (count: number) => void;
}

const untraced = (produce: (trace: TraceHeaders) => Promise<RecordAck[]>): Promise<RecordAck[]> => produce(NO_TRACE_HEADERS);

/**
 * A produce request once its body is read, however it arrived (the Fastify route, or the direct path before Fastify):
 * schema validation, the route's WRITE rules, the produce (through the Idempotency-Key path when keyed) and the answer's
 * text. A refusal before anything is written (an invalid event, a rule's ERROR, a key the ingress cannot serve) may be
 * thrown rather than rejected, so the caller handles both; the error mapper answers either.
 */
export function produceRequest(context: ProduceContext, binding: RouteBinding, body: ReceivedBody, request: ProduceRequest): Promise<ProduceAnswer> {
  const { events, batch } = body;
  // An all-or-nothing batch with an invalid event is refused before any produce span: nothing was sent.
  if (!request.partial) checkEvents(binding.codec, events, batch);
  // The route's data contract: its WRITE rules run after schema validation; an ERROR refuses all-or-nothing requests whole (422).
  const current = context.contracts?.of(binding);
  const bound = currentBinding(binding, current);
  if (current?.contract?.has('WRITE') !== true) return produceValid(context, bound, body, request, undefined);
  // Synchronous unless a JSONATA rule runs: CEL rules take no extra turn of the event loop.
  const run = runWriteRules(current.contract, events, binding.codec);
  return run instanceof Promise ? run.then((rules) => produceValid(context, bound, body, request, rules)) : produceValid(context, bound, body, request, run);
}

/** produceRequest after validation (all or nothing) and the WRITE rules: `rules` is what they made of the events (undefined: none ran). */
function produceValid(context: ProduceContext, bound: RouteBinding, body: ReceivedBody, request: ProduceRequest, rules: RuleResults | undefined): Promise<ProduceAnswer> {
  const { producer, idempotency } = context;
  const { events, batch, raw } = body;
  const { id, key, principal, partial } = request;
  const path = bound.route.path;
  if (!partial && rules !== undefined && rules.refused.size > 0) throw ruleRefusal(rules.refused, batch, events.length);
  if (!partial && (rules === undefined || rules.deadLettered.size === 0) && request.traced === undefined) {
    // The common request (all or nothing, every event bound for the route's topic, transformed or not, tracing off):
    // no produce span, no answer objects to serialise; the text is what the general path below gives.
    const records = toRecords(bound, rules?.events ?? events, id, NO_TRACE_HEADERS, principal);
    if (key === undefined) {
      return producer.produce(records).then((acks) => {
        request.produced?.(acks.length);
        return { status: 200, text: atomicAnswerText(acks, bound.schemaId, batch) };
      });
    }
    if (!idempotency) throw new IdempotencyKeyError('not supported by this ingress');
    // A replay answers the same text, rebuilt from the first request's events (idempotency.ts).
    return idempotency
      .produce(scopeOf(path, principal ?? ANONYMOUS, key), fingerprint(false, raw), { records, answer: (acks) => ({ status: 200, body: atomicAnswerText(acks, bound.schemaId, batch) }) })
      .then(answerOf);
  }
  return producePrepared(context, bound, body, request, rules);
}

/** The general path (`?partial=true`, a dead letter, a traced request): prepared records and answer objects, serialised at the end. */
async function producePrepared(context: ProduceContext, bound: RouteBinding, body: ReceivedBody, request: ProduceRequest, rules: RuleResults | undefined): Promise<ProduceAnswer> {
  const { producer, idempotency } = context;
  const { events, batch, raw } = body;
  const { id, key, principal, partial } = request;
  let response: StoredResponse & { replayed?: true };
  await (request.traced ?? untraced)(async (trace) => {
    const prepared = rules
      ? prepareWithRules(bound, events, rules, { records: (kept: unknown[]) => toRecords(bound, kept, id, trace, principal), headers: recordHeaders(bound, id, trace, principal) }, { batch, partial })
      : partial
        ? preparePartial(bound, events, id, trace, principal)
        : prepareAtomic(bound, events, batch, id, trace, principal, true);
    if (key === undefined) {
      // No key: no claim, no lookup.
      const acks = prepared.records.length > 0 ? await producer.produce(prepared.records) : [];
      response = prepared.answer(acks);
      request.produced?.(acks.length);
      return acks;
    }
    if (!idempotency) throw new IdempotencyKeyError('not supported by this ingress');
    response = await idempotency.produce(scopeOf(bound.route.path, principal ?? ANONYMOUS, key), fingerprint(partial, raw), prepared);
    return [];
  });
  return answerOf(response!);
}

/** A stored response as text: JSON.stringify, as Fastify serialises an object body; the fast paths' text as it is. */
function answerOf(response: StoredResponse & { replayed?: true }): ProduceAnswer {
  const text = typeof response.body === 'string' ? response.body : JSON.stringify(response.body);
  return response.replayed ? { status: response.status, text, replayed: true } : { status: response.status, text };
}

export function registerRoutes(app: FastifyInstance, bindings: RouteBinding[], context: ProduceContext): void {
  for (const binding of bindings) {
    const { path, topic } = binding.route;
    app.post(path, async (request, reply) => {
      // Fastify skips content-type parsers for an absent body; treat it as malformed, not as an event.
      if (!isReceivedBody(request.body)) throw new MalformedBodyError('body is empty; expected a JSON object (one event) or array (a batch)');
      const body = request.body;
      const partial = parsePartial(request.query);
      const key = parseIdempotencyKey(request.headers['idempotency-key']);
      const answer = await produceRequest(context, binding, body, {
        id: request.id,
        key,
        principal: request.principal?.name,
        partial,
        traced: requestTraceContext(request) === undefined ? undefined : (produce) => traceProduce(request, topic, body.events.length, produce),
        produced: (count) => request.log.debug({ topic, count }, 'events produced'),
      });
      // The draft leaves the marker to the server; clients and tests can tell a replay from a first answer.
      if (answer.replayed) reply.header('idempotent-replayed', 'true');
      return reply.code(answer.status).header('content-type', JSON_BODY).send(answer.text);
    });
  }
}
