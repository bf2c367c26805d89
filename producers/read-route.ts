import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { drained } from '../core/backpressure.ts';
import { BadParameterError, NotFoundError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { RegistryClient } from '../core/registry-client.ts';
import type { FetchedBatch, Kafka, KafkaAdmin, PartitionBatch } from '../kafka/index.ts';
import { headerMap, RecordDecoder, type TailRecord } from '../reads/decode.ts';
import { createFormatter, LineEncoder, type Formatter } from '../reads/format.ts';
import { NdjsonEncoder } from '../reads/ndjson.ts';
import type { FilterContext } from '../reads/filter.ts';
import { formatEventId, parseReadQuery, type ReadQuery } from './read-query.ts';

/**
 * `GET /v1/topics/{topic}/records`: a stateless HTTP read of one topic, as
 * NDJSON or (with `Accept: text/event-stream`) Server-Sent Events. No consumer
 * group: each request reads the partitions from exact offsets with a
 * PartitionReader (read_committed), decodes through the registry like `sluice
 * tail`, and ends when the client leaves or `max` records were sent. One fetch
 * is asked for ahead while a batch is written; the one after waits until the
 * socket drained, so a slow client slows the reading, never the memory: per
 * connection at most two fetches (READ_FETCH_BYTES each) plus the socket's buffer.
 *
 * Permission: `read` of the topic (access/route-table.ts), checked by access/plugin.ts before the handler.
 */

export const READ_ROUTE = '/v1/topics/:topic/records';
/** Most bytes one connection's fetch may bring in (all its partitions together). */
export const READ_FETCH_BYTES = 1024 * 1024;
export const READ_PARTITION_BYTES = 256 * 1024;
/** A comment line now and then keeps proxies from closing an idle event stream. */
const SSE_KEEPALIVE_MS = 15_000;

export interface ReadRouteOptions {
  kafka: Kafka;
  admin: KafkaAdmin;
  registry: RegistryClient;
  /** The topics that may be read (the topology's); any other name is a 404. */
  topics: readonly string[];
  logger: Logger;
}

export interface ReadStats {
  /** Streams open now. */
  open: number;
  /** Most bytes any stream had waiting in its socket's buffer (what the client had not taken yet). */
  maxBufferedBytes: number;
}

export interface ReadRoute {
  stats(): ReadStats;
  /** Ends every open stream (the ingress is shutting down). */
  close(): Promise<void>;
}

function filterContext(record: TailRecord): FilterContext {
  return { value: record.value, key: record.key, headers: headerMap(record.headers), topic: record.topic, partition: record.partition, offset: Number(record.offset), timestamp: record.timestamp };
}

/** The first offset to read of every partition, from the query (or the resumed positions). */
export async function startPositions(admin: KafkaAdmin, topic: string, query: ReadQuery): Promise<Map<number, bigint>> {
  const [earliest, latest] = await Promise.all([admin.listOffsets(topic, 'earliest'), admin.listOffsets(topic, 'latest', { readCommitted: true })]);
  const partitions = [...latest.keys()].sort((a, b) => a - b);
  if (query.partition !== undefined && !latest.has(query.partition)) {
    throw new BadParameterError('partition', `topic ${topic} has no partition ${query.partition} (partitions 0-${partitions.length - 1})`);
  }
  const chosen = query.partition === undefined ? partitions : [query.partition];
  const clamp = (p: number, offset: bigint) => {
    const low = earliest.get(p) ?? 0n;
    const high = latest.get(p) ?? low;
    return offset < low ? low : offset > high ? high : offset;
  };
  const out = new Map<number, bigint>();
  if (query.resume) {
    for (const [p, offset] of query.resume) {
      if (!latest.has(p)) throw new BadParameterError('Last-Event-ID', `topic ${topic} has no partition ${p}`);
      // Below the log start the records are gone (retention); the earliest kept one is the nearest truth.
      if (chosen.includes(p)) out.set(p, clamp(p, offset));
    }
    return out;
  }
  const start = query.start;
  const byTime = start.kind === 'time' ? await admin.listOffsets(topic, { timestamp: start.timestamp }) : undefined;
  for (const p of chosen) {
    if (start.kind === 'beginning') out.set(p, earliest.get(p) ?? 0n);
    else if (start.kind === 'end') out.set(p, latest.get(p)!);
    else if (start.kind === 'offset') out.set(p, clamp(p, start.offset));
    else out.set(p, clamp(p, byTime!.get(p)!));
  }
  return out;
}

/** One response being streamed: writes records, waits for the socket when its buffer is full. */
class RecordStream {
  readonly #raw: ServerResponse;
  readonly #sse: boolean;
  readonly #formatter: Formatter = createFormatter('ndjson', { headers: true });
  readonly #encoder = new LineEncoder();
  readonly #decoder: RecordDecoder;
  readonly #ndjson: NdjsonEncoder;
  readonly #query: ReadQuery;
  readonly #positions: Map<number, bigint>;
  readonly #stats: ReadStats;
  #sent = 0;
  #closed = false;
  #lastWrite = Date.now();

  constructor(raw: ServerResponse, sse: boolean, decoder: RecordDecoder, query: ReadQuery, positions: Map<number, bigint>, stats: ReadStats) {
    this.#raw = raw;
    this.#sse = sse;
    this.#decoder = decoder;
    this.#ndjson = new NdjsonEncoder(decoder, { headers: true });
    this.#query = query;
    this.#positions = positions;
    this.#stats = stats;
    raw.on('close', () => {
      this.#closed = true;
    });
  }

  /** True once the client left or `max` records were sent. */
  get done(): boolean {
    return this.#closed || (this.#query.max !== undefined && this.#sent >= this.#query.max);
  }

  /** Plain NDJSON (no SSE, no filter): each batch is read in place and written from its bytes (NdjsonEncoder). */
  get inPlace(): boolean {
    return !this.#sse && !this.#query.where;
  }

  /** A batch's records as NDJSON lines written from the fetched bytes, the same text as write() prints, in one write. */
  async writeFetched(batch: FetchedBatch): Promise<void> {
    if (this.done) return;
    const max = this.#query.max ?? Infinity;
    const { bytes, count, next, release } = await this.#ndjson.encodeFetched(batch, max - this.#sent);
    this.#sent += count;
    if (next !== undefined) this.#positions.set(batch.partition, next);
    if (this.#sent < max) this.#positions.set(batch.partition, batch.nextOffset);
    if (count > 0 && !this.#closed) await this.#send(bytes, release);
  }

  /** A batch's records as one write (one string for the socket, then backpressure once), not a write per record. */
  async write(batch: PartitionBatch): Promise<void> {
    if (this.done) return;
    await this.#decoder.prepare(batch.records);
    const max = this.#query.max ?? Infinity;
    const lines: string[] = [];
    let last: bigint | undefined;
    for (const r of batch.records) {
      if (this.#sent >= max) break;
      const record = this.#decoder.decode(r);
      // The position moves past a record whether or not the filter keeps it, so a resume never reads it again.
      last = r.offset;
      if (this.#query.where && !this.#query.where(filterContext(record))) continue;
      const line = this.#formatter.format(record);
      this.#sent += 1;
      if (this.#sse) {
        // Each event's id names the positions after it, so a client resumes after the last event it received.
        this.#positions.set(r.partition, r.offset + 1n);
        lines.push(`id: ${formatEventId(this.#positions)}\nevent: record\ndata: ${line.slice(0, -1)}\n\n`);
      } else lines.push(line);
    }
    if (last !== undefined) this.#positions.set(batch.partition, last + 1n);
    if (this.#sent < max) this.#positions.set(batch.partition, batch.nextOffset);
    if (lines.length > 0 && !this.#closed) {
      const { bytes, release } = this.#encoder.encode(lines);
      await this.#send(bytes, release);
    }
  }

  /** An SSE comment when nothing was written for a while (called between fetches). */
  async keepAlive(): Promise<void> {
    if (this.#sse && !this.#closed && Date.now() - this.#lastWrite > SSE_KEEPALIVE_MS) await this.#send(': keep-alive\n\n');
  }

  async #send(text: string | Buffer, written?: () => void): Promise<void> {
    this.#lastWrite = Date.now();
    const flushed = this.#raw.write(text, written);
    const buffered = this.#raw.writableLength;
    // Written through already (see the tail's stdout writer): the buffer may be filled again.
    if (buffered === 0) written?.();
    if (buffered > this.#stats.maxBufferedBytes) this.#stats.maxBufferedBytes = buffered;
    if (flushed || this.#closed) return;
    // Backpressure: the next write (and so the next fetch) waits until the client has taken the buffer.
    await drained(this.#raw);
  }
}

export function registerReadRoute(app: FastifyInstance, options: ReadRouteOptions): ReadRoute {
  const { kafka, admin, registry, logger } = options;
  const topics = new Set(options.topics);
  const stats: ReadStats = { open: 0, maxBufferedBytes: 0 };
  const open = new Set<() => Promise<void>>();
  let closing = false;
  // One decoder for every stream: schemas are fetched once per id for the whole ingress.
  const decoder = new RecordDecoder(registry);

  app.get<{ Params: { topic: string }; Querystring: Record<string, unknown> }>(READ_ROUTE, async (request, reply) => {
    const { topic } = request.params;
    if (!topics.has(topic)) throw new NotFoundError(`no topic ${topic} to read (topics: ${[...topics].join(', ') || 'none'})`);
    const lastEventId = request.headers['last-event-id'];
    const query = parseReadQuery(request.query, typeof lastEventId === 'string' ? lastEventId : undefined);
    const positions = await startPositions(admin, topic, query);
    const sse = accepts(request, 'text/event-stream');

    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': sse ? 'text/event-stream; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
      'cache-control': 'no-cache',
      'x-correlation-id': request.id,
      // NGINX would otherwise buffer the stream.
      'x-accel-buffering': 'no',
    });
    raw.flushHeaders();
    const stream = new RecordStream(raw, sse, decoder, query, positions, stats);
    const reader = kafka.partitionReader({ maxBytes: READ_FETCH_BYTES, maxBytesPerPartition: READ_PARTITION_BYTES });
    reader.assign([...positions].map(([partition, offset]) => ({ topic, partition, offset })));
    const stop = () => reader.stop();
    raw.on('close', () => void stop());
    open.add(stop);
    stats.open += 1;
    try {
      const until = () => {
        void stream.keepAlive();
        return stream.done;
      };
      await (stream.inPlace ? reader.runFetched((batch) => stream.writeFetched(batch), until) : reader.run((batch) => stream.write(batch), until));
    } catch (error) {
      // The status line is gone; the stream ends, and the log says why.
      request.log.warn({ err: error, topic }, 'read stream failed');
    } finally {
      open.delete(stop);
      stats.open -= 1;
      // The response ends with its last record: the client does not wait for the reader's connections to close.
      // At shutdown the keep-alive connection goes too: the server's close would wait for it.
      if (closing) raw.end(() => request.raw.socket.destroy());
      else raw.end();
      await reader.close().catch((error: unknown) => logger.debug({ err: error }, 'closing a read stream reader failed'));
    }
  });

  return {
    stats: () => ({ ...stats }),
    async close() {
      closing = true;
      await Promise.all([...open].map((stop) => stop()));
    },
  };
}

function accepts(request: FastifyRequest, type: string): boolean {
  const accept = request.headers.accept;
  return typeof accept === 'string' && accept.toLowerCase().includes(type);
}
