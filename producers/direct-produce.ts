import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { headLines, writeHeadWith } from '../access/http.ts';
import { answerFailure, type ErrorMapperOptions } from '../core/http-errors.ts';
import type { RequestTallies } from '../core/http-metrics.ts';
import type { Logger } from '../core/logger.ts';
import { parseJsonBody, receiveBody, type ParsedBody } from './body-parsers.ts';
import { CORRELATION_ID_HEADER, correlationIdOf } from './correlation.ts';
import { parseIdempotencyKey } from './idempotency.ts';
import { JSON_BODY, produceRequest, type ProduceContext, type RouteBinding } from './routes.ts';

/**
 * The common produce request answered before Fastify: a POST of JSON to a route's exact path, with a Content-Length
 * within the body limit and no query, on an ingress that is open (no access file) and does not trace. Fastify's
 * routing, hooks, per-request logger, content-type parser and reply cost such a request about a fifth of its CPU;
 * here it is read and then produced and answered by the function the route calls (routes.ts produceRequest: schema
 * validation, the route's WRITE rules, the Idempotency-Key path with the route's own Idempotency object), with the
 * same headers (security headers, correlation id, `idempotent-replayed`) and the same refusals (the error mapper's
 * answerFailure: 4xx naming the field, counted, logged), and recorded in the same request metrics. Everything else
 * (`?partial=true`, NDJSON, a chunked body), and every request while the ingress closes (Fastify refuses those), goes
 * to Fastify, decided from the request's head before its body is read. Admission, the pipelining bound and the
 * draining response (producers/admission.ts, access/http.ts, producers/draining.ts) wrap this listener as they wrap
 * Fastify's.
 */

export interface DirectProduceOptions {
  bindings: readonly RouteBinding[];
  /** The routes' producer, contracts and Idempotency (the very objects registerRoutes was given). */
  context: ProduceContext;
  /** Headers every answer carries (the security headers). */
  headers: Readonly<Record<string, string>>;
  bodyLimit: number;
  maxDepth: number;
  /** The ingress's error mapper (producers/ingress-errors.ts). */
  errors: ErrorMapperOptions;
  /** The request metrics Fastify's answers are recorded in (core/http-metrics.ts). */
  tallies: RequestTallies;
  logger: Logger;
  /** While true (the ingress closing), requests go to Fastify, which refuses new ones. */
  closing: () => boolean;
}

/** The media types the JSON parser takes that need no parsing to recognise; any other spelling goes to Fastify. */
const JSON_TYPES = new Set(['application/json', 'application/json; charset=utf-8']);
/** The marker of an answer replayed for an Idempotency-Key (the route's). */
const REPLAYED = ['idempotent-replayed', 'true'];

export class DirectProduce {
  #options: DirectProduceOptions | undefined;
  #routes = new Map<string, RouteBinding>();
  #headLines = '';
  #parse: (text: string) => ParsedBody = parseJsonBody;

  /** Serves the common requests from now on (until then every request goes to Fastify). */
  enable(options: DirectProduceOptions): void {
    this.#options = options;
    this.#routes = new Map(options.bindings.map((b) => [b.route.path, b]));
    this.#headLines = headLines(options.headers);
    this.#parse = (text) => parseJsonBody(text, options.maxDepth);
  }

  /** `fastify` (the server's request listener) with the common produce requests taken off it. */
  wrap(fastify: RequestListener): RequestListener {
    return (req, res) => {
      const binding = req.method === 'POST' ? this.#routes.get(req.url!) : undefined;
      if (binding !== undefined && this.#takes(req)) this.#read(binding, req, res);
      else fastify(req, res);
    };
  }

  #takes(req: IncomingMessage): boolean {
    const options = this.#options!;
    const headers = req.headers;
    const type = headers['content-type'];
    if (type === undefined || !JSON_TYPES.has(type) || headers['transfer-encoding'] !== undefined) return false;
    // Without a length (or beyond the limit) Fastify's reader refuses or streams it; an empty body is its 400 too.
    const length = Number(headers['content-length']);
    if (!(length > 0 && length <= options.bodyLimit)) return false;
    return !options.closing();
  }

  #read(binding: RouteBinding, req: IncomingMessage, res: ServerResponse): void {
    const start = performance.now();
    const id = correlationIdOf(req);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => this.#produce(binding, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), id, start, req, res));
    // A client gone mid-body: Node closes the socket; there is no one to answer. No 'error' listener: Node emits an
    // aborted request's error only when one listens (_http_incoming.js onError), and each listener costs every request.
  }

  #produce(binding: RouteBinding, body: Buffer, id: string, start: number, req: IncomingMessage, res: ServerResponse): void {
    const { context, logger } = this.#options!;
    try {
      const received = receiveBody(body, this.#parse);
      // After the body, as the route reads it (the content-type parser first): a malformed body is refused before a bad key.
      const key = parseIdempotencyKey(req.headers['idempotency-key']);
      const produced = logger.isLevelEnabled('debug') ? (count: number) => logger.child({ correlationId: id }).debug({ topic: binding.route.topic, count }, 'events produced') : undefined;
      produceRequest(context, binding, received, { id, key, principal: undefined, partial: false, produced }).then(
        (answer) => this.#answer(res, binding, answer.status, id, answer.text, start, answer.replayed ? REPLAYED : undefined),
        (error: unknown) => this.#fail(error, binding, id, start, req, res),
      );
    } catch (error) {
      this.#fail(error, binding, id, start, req, res);
    }
  }

  #fail(error: unknown, binding: RouteBinding, id: string, start: number, req: IncomingMessage, res: ServerResponse): void {
    const { errors, logger } = this.#options!;
    const extra: string[] = [];
    const request = { method: 'POST', url: req.url!, log: logger.child({ correlationId: id }) };
    const { status, body } = answerFailure(errors, error, request, { header: (name, value) => extra.push(name, value) });
    this.#answer(res, binding, status, id, JSON.stringify(body), start, extra);
  }

  #answer(res: ServerResponse, binding: RouteBinding, status: number, id: string, text: string, start: number, extra?: readonly string[]): void {
    const head = [CORRELATION_ID_HEADER, id, 'content-type', JSON_BODY, 'content-length', String(Buffer.byteLength(text))];
    if (extra !== undefined) head.push(...extra);
    writeHeadWith(res, status, this.#headLines, head);
    res.end(text);
    this.#options!.tallies.record('POST', binding.route.path, status, (performance.now() - start) / 1000);
  }
}
