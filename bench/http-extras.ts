import { spawn, spawnSync } from 'node:child_process';
import { PROJECT_ROOT } from '../core/config.ts';
import { cpuSeconds, median, type EventPool } from './common.ts';
import { loadHttp } from './ingress.ts';

/**
 * Two figures of issue 14, measured against a running bench ingress:
 * single events with and without an Idempotency-Key at 128 connections
 * (alternated, median of the rounds), and the HTTP read path's events/s
 * beside `sluice tail` reading the same records.
 */

export interface IdempotencyFigures {
  connections: number;
  plainEventsPerSec: number;
  keyedEventsPerSec: number;
  keyedNon2xx: number;
  /**
   * Where the time goes (medians of the rounds): CPU microseconds per event of
   * the ingress process and of the whole machine (ingress, broker and load
   * generator together), without and with a key. Linux only (/proc), else null.
   */
  cpuUsPerEvent?: { plainIngress: number; keyedIngress: number; plainMachine: number; keyedMachine: number } | null;
}

export interface ReadPathFigures {
  records: number;
  readPathEventsPerSec: number;
  tailEventsPerSec: number;
  /** kcat (librdkafka) reading the same records raw, printing offsets: the ceiling for a reader; null without kcat. */
  kcatEventsPerSec?: number | null;
}

export async function measureIdempotency(url: string, pool: EventPool, durationS: number, rounds: number, runId: string, ingressPid?: number): Promise<IdempotencyFigures> {
  const connections = 128;
  const plain: number[] = [];
  const keyed: number[] = [];
  const cpu = { plainIngress: [] as number[], keyedIngress: [] as number[], plainMachine: [] as number[], keyedMachine: [] as number[] };
  let keyedNon2xx = 0;
  // Warms both paths (the claims and the idempotency topic's reader, and the plain producer), so neither's first round
  // runs cold; the keyed one longer, as it was when it ran transactions (the broker's JIT compiling the coordinator's code).
  await loadHttp({ url, connections, durationS: 6, bodies: pool.singleBodies, eventsPerRequest: 1, idempotencyKeys: `${runId}-warm` });
  await loadHttp({ url, connections, durationS: 2, bodies: pool.singleBodies, eventsPerRequest: 1 });
  for (let r = 0; r < Math.max(3, rounds); r++) {
    for (const withKey of r % 2 === 0 ? [false, true] : [true, false]) {
      const before = cpuSeconds(ingressPid);
      const figures = await loadHttp({ url, connections, durationS, bodies: pool.singleBodies, eventsPerRequest: 1, ...(withKey ? { idempotencyKeys: `${runId}-${r}` } : {}) });
      const after = cpuSeconds(ingressPid);
      (withKey ? keyed : plain).push(figures.eventsPerSec);
      if (withKey) keyedNon2xx += figures.non2xx;
      const events = figures.eventsPerSec * durationS;
      if (before && after && events > 0) {
        cpu[withKey ? 'keyedIngress' : 'plainIngress'].push(((after.process - before.process) * 1e6) / events);
        cpu[withKey ? 'keyedMachine' : 'plainMachine'].push(((after.machine - before.machine) * 1e6) / events);
      }
    }
  }
  const cpuUsPerEvent =
    cpu.plainIngress.length > 0 && cpu.keyedIngress.length > 0
      ? {
          plainIngress: Math.round(median(cpu.plainIngress)),
          keyedIngress: Math.round(median(cpu.keyedIngress)),
          plainMachine: Math.round(median(cpu.plainMachine)),
          keyedMachine: Math.round(median(cpu.keyedMachine)),
        }
      : null;
  return { connections, plainEventsPerSec: median(plain), keyedEventsPerSec: median(keyed), keyedNon2xx, cpuUsPerEvent };
}

async function countLines(stream: NodeJS.ReadableStream | ReadableStream<Uint8Array>): Promise<number> {
  let lines = 0;
  for await (const chunk of stream as AsyncIterable<Uint8Array>) for (const byte of chunk) if (byte === 10) lines++;
  return lines;
}

/** `records` from the beginning of `topic` (fewer than its offsets: transaction markers take offsets too): GET …/records as NDJSON, then `sluice tail` as a user runs it. */
export async function measureReadPath(ingressUrl: string, topic: string, records: number, env: { brokers: string[]; registryUrl: string }): Promise<ReadPathFigures> {
  let started = performance.now();
  const response = await fetch(`${ingressUrl}/v1/topics/${encodeURIComponent(topic)}/records?from=beginning&max=${records}`);
  const read = await countLines(response.body!);
  const readPathEventsPerSec = Math.round((read * 1000) / (performance.now() - started));
  started = performance.now();
  const child = spawn(
    process.execPath,
    ['--disable-warning=TimeoutNegativeWarning', `${PROJECT_ROOT}/bin/sluice.js`, 'tail', topic, '--from-beginning', '--max', String(records), '--format', 'ndjson'],
    {
      env: { ...process.env, KAFKA_BROKERS: env.brokers.join(','), SLUICE_REGISTRY_URL: env.registryUrl, SLUICE_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  const tailed = await countLines(child.stdout);
  const tailEventsPerSec = Math.round((tailed * 1000) / (performance.now() - started));
  if (read !== records || tailed !== records) throw new Error(`read path read ${read}, sluice tail ${tailed} of ${records} records`);
  return { records, readPathEventsPerSec, tailEventsPerSec, kcatEventsPerSec: kcatRate(topic, records, env.brokers) };
}

function kcatRate(topic: string, records: number, brokers: string[]): number | null {
  const started = performance.now();
  const result = spawnSync('kcat', ['-C', '-b', brokers.join(','), '-t', topic, '-o', 'beginning', '-c', String(records), '-q', '-f', '%o\n'], { maxBuffer: 256 * 1024 * 1024 });
  if (result.error || result.status !== 0) return null;
  const lines = result.stdout.toString('utf8').split('\n').length - 1;
  return lines === records ? Math.round((records * 1000) / (performance.now() - started)) : null;
}
