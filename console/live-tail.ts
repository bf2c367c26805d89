import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Kafka } from '../kafka/index.ts';
import { drained } from '../core/backpressure.ts';
import { BadRequestError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { RegistryClient } from '../core/registry-client.ts';
import { compileFilter } from '../reads/filter.ts';
import { recordObject, toJson } from '../reads/format.ts';
import { parseSince, type StartPosition } from '../reads/positions.ts';
import { startTail } from '../reads/reader.ts';
import { READ_FETCH_BYTES, READ_PARTITION_BYTES } from '../producers/read-route.ts';

interface TailQuery {
  topic?: string;
  where?: string;
  from?: string;
}

function startOf(from: string | undefined): StartPosition {
  if (from === undefined || from === '' || from === 'end') return { kind: 'end' };
  if (from === 'beginning') return { kind: 'beginning' };
  return { kind: 'time', timestamp: parseSince(from) };
}

function event(name: string, data: string): string {
  return `event: ${name}\ndata: ${data}\n\n`;
}

export interface LiveTailStats {
  /** Live tails open now. */
  open: number;
  /** Most bytes any live tail had waiting in its socket's buffer (what the browser had not taken yet). */
  maxBufferedBytes: number;
}

/**
 * GET /api/tail?topic=&where=&from=: the same engine as `sluice tail`, streamed
 * as Server-Sent Events (one `record` event per record, JSON with exact longs).
 * The tail stops when the browser goes away. Bounded as the ingress's read path
 * (producers/read-route.ts): fetches of at most READ_FETCH_BYTES, and the next
 * fetch waits until the browser has taken what was written ('drain'), so a
 * slow or stalled browser pauses the reading instead of growing memory.
 */
export function registerLiveTail(app: FastifyInstance, deps: { kafka: Kafka; registry: RegistryClient; logger: Logger }): { stats(): LiveTailStats } {
  const stats: LiveTailStats = { open: 0, maxBufferedBytes: 0 };
  const send = async (raw: ServerResponse, text: string): Promise<void> => {
    const flushed = raw.write(text);
    if (raw.writableLength > stats.maxBufferedBytes) stats.maxBufferedBytes = raw.writableLength;
    if (!flushed && !raw.destroyed) await drained(raw);
  };
  app.get<{ Querystring: TailQuery }>('/api/tail', async (request, reply) => {
    const { topic, where } = request.query;
    if (!topic) throw new BadRequestError('topic is required');
    // Bad input is answered as JSON before the stream starts, so the page can show why.
    const filter = where ? compileFilter(where) : undefined;
    const position = { start: startOf(request.query.from) };

    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    let open = true;
    let stop: () => void = () => undefined;
    // The response's close, not the request's: a GET's request stream closes as soon as it has been read.
    raw.once('close', () => {
      open = false;
      stop();
    });
    // Only while nothing is waiting in the buffer: a stalled browser gets no more bytes, not even these.
    const heartbeat = setInterval(() => raw.writableLength === 0 && raw.write(': keep-alive\n\n'), 15_000);
    stats.open += 1;
    try {
      const tail = await startTail({
        kafka: deps.kafka,
        registry: deps.registry,
        logger: deps.logger,
        topics: [topic],
        position,
        fetchBytes: { maxBytes: READ_FETCH_BYTES, maxBytesPerPartition: READ_PARTITION_BYTES },
        ...(filter ? { filter } : {}),
        async onRecords(records) {
          // Record by record, waiting for the browser whenever its buffer is full: at most one fetch is held.
          for (const r of records) {
            if (!open) return;
            await send(raw, event('record', toJson(recordObject(r, true), r.binary)));
          }
        },
      });
      stop = () => void tail.stop().catch((error: unknown) => deps.logger.warn({ err: error, topic }, 'live tail did not stop cleanly'));
      // The browser may have left while the tail was starting.
      if (!open) stop();
      else raw.write(event('ready', JSON.stringify({ topic, partitions: tail.ranges.length })));
      await tail.done.catch((error: unknown) => {
        deps.logger.warn({ err: error, topic }, 'live tail failed');
        if (open) raw.write(event('failure', JSON.stringify({ message: (error as Error).message })));
      });
    } catch (error) {
      deps.logger.warn({ err: error, topic }, 'live tail could not start');
      raw.write(event('failure', JSON.stringify({ message: (error as Error).message })));
    } finally {
      stats.open -= 1;
      clearInterval(heartbeat);
      if (open) raw.end();
    }
  });
  return { stats: () => ({ ...stats }) };
}
