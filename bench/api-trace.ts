import diagnostics from 'node:diagnostics_channel';
import { appendFileSync } from 'node:fs';

/**
 * Preloaded (`--import`) into a bench child: every Kafka request the client
 * sends, one line per answer in SLUICE_BENCH_API_TRACE: api key, send and answer
 * times (epoch ms, the same clock as bench/e2e-latency.ts's), the error's
 * apiId, for a Fetch whether it brought records, and which connection (a
 * number per connection object: each transactional producer has its own). Only the client's tracing
 * channel is read, so it traces any checkout's worker (bench/e2e-ab.ts).
 */

const file = process.env.SLUICE_BENCH_API_TRACE;
const now = (): number => performance.timeOrigin + performance.now();

interface Context {
  apiKey?: number;
  connection?: object;
  result?: { responses?: { partitions?: { records?: unknown }[] }[] };
  error?: unknown;
  traceStart?: number;
}

function apiIdOf(error: unknown): string {
  for (let e: unknown = error; e;) {
    const { apiId, errors, cause } = e as { apiId?: string; errors?: unknown[]; cause?: unknown };
    if (apiId) return apiId;
    if (Array.isArray(errors)) for (const inner of errors) if (apiIdOf(inner)) return apiIdOf(inner);
    e = cause;
  }
  return error ? 'ERROR' : '';
}

const hasRecords = (r: unknown): boolean => (Buffer.isBuffer(r) ? r.length > 0 : Array.isArray(r) ? r.length > 0 : r !== null && r !== undefined && typeof r === 'object');

if (file) {
  let lines: string[] = [];
  const connections = new WeakMap<object, number>();
  let nextConnection = 0;
  const connectionOf = (connection: object | undefined): number => {
    if (!connection) return -1;
    let id = connections.get(connection);
    if (id === undefined) connections.set(connection, (id = nextConnection++));
    return id;
  };
  diagnostics.subscribe('tracing:plt:kafka:connections:api:start', (message) => {
    (message as Context).traceStart = now();
  });
  diagnostics.subscribe('tracing:plt:kafka:connections:api:asyncStart', (message) => {
    const context = message as Context;
    if (context.traceStart === undefined) return;
    const data = context.apiKey === 1 && context.result?.responses?.some((t) => t.partitions?.some((p) => hasRecords(p.records))) ? 'D' : '';
    lines.push(`${context.apiKey} ${context.traceStart.toFixed(3)} ${now().toFixed(3)} ${apiIdOf(context.error) || '-'} ${data || '-'} ${connectionOf(context.connection)}`);
  });
  const flush = (): void => {
    if (lines.length === 0) return;
    appendFileSync(file, `${lines.join('\n')}\n`);
    lines = [];
  };
  setInterval(flush, 250).unref();
  process.on('exit', flush);
}
