import autocannon from 'autocannon';
import { createLogger } from '../core/logger.ts';
import { RegistryClient } from '../core/registry-client.ts';
import { startIngress } from '../producers/server.ts';
import { tuneServiceHeap } from '../core/heap.ts';
import { announce, benchConfig, benchTopology, requiredEnv, round, type BenchEnv, type EventPool } from './common.ts';

/**
 * Sluice's ingress as a bench contender (run as a child by bench/run.ts), and
 * the autocannon load every HTTP contender gets.
 */

export interface HttpFigures {
  /** Events accepted (2xx) per second: requests/s times events per request. */
  eventsPerSec: number;
  requestsPerSec: number;
  latencyMs: { p50: number; p99: number; p999: number; avg: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  /** CPU µs per accepted event over the timed window: the contender's own process, and the whole machine (/proc; Linux only). */
  cpuUsPerEvent?: { process: number; machine: number };
}

export interface LoadSpec {
  url: string;
  connections: number;
  durationS: number;
  /** Bodies sent round-robin across requests. */
  bodies: string[];
  eventsPerRequest: number;
  /** Sends a fresh `Idempotency-Key` (this prefix and a counter) with every request. */
  idempotencyKeys?: string;
}

export async function loadHttp(spec: LoadSpec): Promise<HttpFigures> {
  let next = 0;
  const result = await autocannon({
    url: spec.url,
    connections: spec.connections,
    duration: spec.durationS,
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        setupRequest: (request) => {
          const n = next++;
          request.body = spec.bodies[n % spec.bodies.length]!;
          if (spec.idempotencyKeys !== undefined) request.headers = { ...request.headers, 'idempotency-key': `${spec.idempotencyKeys}-${n}` };
          return request;
        },
      },
    ],
  });
  const seconds = result.duration > 0 ? result.duration : spec.durationS;
  const accepted = result['2xx'];
  return {
    eventsPerSec: round((accepted * spec.eventsPerRequest) / seconds, 0),
    requestsPerSec: round(accepted / seconds, 0),
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, p999: result.latency.p99_9, avg: round(result.latency.average) },
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}

async function serve(): Promise<void> {
  const env = JSON.parse(requiredEnv('SLUICE_BENCH_ENV')) as BenchEnv;
  const config = benchConfig(env);
  const logger = createLogger(config, 'bench-ingress', 2);
  // As `sluice up` and `sluice ingress` run it (cli/serve.ts).
  tuneServiceHeap(config);
  const ingress = await startIngress({ config, logger, topology: benchTopology(env), registry: new RegistryClient(env.registryUrl), port: 0 });
  announce({ url: ingress.url }, () => ingress.close());
}

export type { EventPool };

if (import.meta.main) await serve();
