import type { FastifyInstance } from 'fastify';
import type { Kafka } from '../kafka/index.ts';
import { SluiceError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { RegistryClient } from '../core/registry-client.ts';
import { compileFilter } from '../tail/filter.ts';
import { recordObject, toJson } from '../tail/format.ts';
import { parseSince, type StartPosition } from '../tail/positions.ts';
import { startTail } from '../tail/reader.ts';

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

/**
 * GET /api/tail?topic=&where=&from=: the same engine as `sluice tail`, streamed
 * as Server-Sent Events (one `record` event per record, JSON with exact longs).
 * The tail stops when the browser goes away.
 */
export function registerLiveTail(app: FastifyInstance, deps: { kafka: Kafka; registry: RegistryClient; logger: Logger }): void {
  app.get<{ Querystring: TailQuery }>('/api/tail', async (request, reply) => {
    const { topic, where } = request.query;
    if (!topic) throw new SluiceError('SLUICE_BAD_REQUEST', 'topic is required', { statusCode: 400 });
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
    const heartbeat = setInterval(() => raw.write(': keep-alive\n\n'), 15_000);
    try {
      const tail = await startTail({
        kafka: deps.kafka,
        registry: deps.registry,
        logger: deps.logger,
        topics: [topic],
        position,
        ...(filter ? { filter } : {}),
        onRecords(records) {
          if (!open) return;
          let text = '';
          for (const r of records) text += event('record', toJson(recordObject(r, true), r.binary));
          raw.write(text);
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
      clearInterval(heartbeat);
      if (open) raw.end();
    }
  });
}
