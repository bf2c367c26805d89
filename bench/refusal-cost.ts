import { fork } from 'node:child_process';
import { createConnection, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Counter, Registry } from 'prom-client';
import { serverFactory } from '../access/http.ts';
import { securityHeaders } from '../access/security-headers.ts';
import { loadConfig } from '../core/config.ts';
import { admissionGate } from '../producers/admission.ts';
import { drainingResponse } from '../producers/draining.ts';
import { processCpuSeconds, round } from './common.ts';

/**
 * The ingress's CPU per refusal (issue 24), not part of `npm run bench`: a server built like the ingress's (its
 * serverFactory, the pipelining bound, the draining response class, admission in front) with admission closed, so
 * every produce request is refused; a client process pipelines single-event POSTs over keep-alive connections (as
 * tests/faults/load.ts does) and the server process's utime+stime (/proc) over N answers gives µs per refusal.
 *
 *   node bench/refusal-cost.ts [requests=200000] [connections=16] [window=64]
 *
 * REFUSAL_COALESCE=0 serves without coalesced writes (the listener as before, for an A/B); REFUSAL_SERVER_ARGS adds
 * node options to the server process (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p").
 */

async function serve(): Promise<void> {
  const config = loadConfig({ ...process.env, SLUICE_KAFKA_BROKERS: process.env.SLUICE_KAFKA_BROKERS ?? '127.0.0.1:9092' });
  const registry = new Registry();
  const rejected = new Counter({ name: 'rejected', help: 'x', labelNames: ['code'], registers: [registry] }).labels('SLUICE_OVERLOADED');
  const handler = admissionGate(
    () => {
      throw new Error('admission is closed: nothing reaches the handler');
    },
    {
      admission: { admit: () => false },
      source: { backlog: 0, oldestWaitMs: 0 },
      paths: ['/v1/orders'],
      headers: securityHeaders(config),
      refused: () => rejected.inc(),
      coalesce: process.env.REFUSAL_COALESCE !== '0',
    },
  );
  const server = serverFactory(
    config,
    drainingResponse(() => false),
  )(handler, {});
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as AddressInfo).port }));
  process.on('message', () => server.close(() => process.exit(0)));
}

const ORDER = JSON.stringify({ orderId: 'o-000000000000', customerId: 'c-1', amount: 12.5, currency: 'EUR', items: [{ sku: 'sku-1', qty: 1 }] });
const REQUEST = `POST /v1/orders HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${ORDER.length}\r\n\r\n${ORDER}`;

const STATUS = 'HTTP/1.1 503 ';

/** Closed-loop pipelined client: each connection keeps `window` requests outstanding until `total` are answered. */
async function drive(port: number, total: number, connections: number, window: number): Promise<{ answered: number; ms: number }> {
  let sent = 0;
  let answered = 0;
  const started = performance.now();
  await Promise.all(
    Array.from(
      { length: connections },
      () =>
        new Promise<void>((resolve, reject) => {
          const socket = createConnection({ port, host: '127.0.0.1', noDelay: true });
          let outstanding = 0;
          let rest = '';
          const top = (): void => {
            const n = Math.min(window - outstanding, total - sent);
            if (n <= 0) return;
            sent += n;
            outstanding += n;
            socket.write(REQUEST.repeat(n));
          };
          socket.on('connect', top);
          socket.on('data', (chunk: Buffer) => {
            // Counts answers by their status lines; the tail kept is one byte short of one, so none is counted twice.
            const text = rest + chunk.toString('latin1');
            const n = text.split(STATUS).length - 1;
            rest = text.slice(-(STATUS.length - 1));
            outstanding -= n;
            answered += n;
            if (sent < total) top();
            else if (outstanding <= 0) {
              socket.end();
              resolve();
            }
          });
          socket.on('error', reject);
        }),
    ),
  );
  return { answered, ms: performance.now() - started };
}

async function main(): Promise<void> {
  const [total = 200_000, connections = 16, window = 64] = process.argv.slice(2).map(Number);
  const child = fork(fileURLToPath(import.meta.url), ['serve'], {
    execArgv: [...process.execArgv, ...(process.env.REFUSAL_SERVER_ARGS?.split(' ').filter(Boolean) ?? [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const { port } = await new Promise<{ port: number }>((resolve) => child.once('message', (m) => resolve(m as { port: number })));
  await drive(port, 20_000, connections, window); // warm-up: JIT, connections' buffers
  const before = processCpuSeconds(child.pid!)!;
  const { answered, ms } = await drive(port, total, connections, window);
  const after = processCpuSeconds(child.pid!)!;
  child.send('stop');
  console.log(
    JSON.stringify({
      answered,
      refusalsPerS: round((answered * 1000) / ms, 0),
      cpuUsPerRefusal: round(((after - before) * 1e6) / answered, 2),
      serverCpuShare: round(((after - before) * 1000) / ms, 2),
    }),
  );
}

if (process.argv[2] === 'serve') await serve();
else await main();
