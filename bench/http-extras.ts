import { spawn, spawnSync } from 'node:child_process';
import { get, type IncomingMessage } from 'node:http';
import { PROJECT_ROOT } from '../core/config.ts';
import { cpuSeconds, cpuUsPerEvent, median, type EventPool } from './common.ts';
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
  /** Alternated rounds the medians are of (absent: one pass each, before issue 20). */
  rounds?: number;
  /** CPU µs per record: the ingress process and the whole machine for the read path; the whole machine for the tail and kcat. */
  cpuUsPerRecord?: { readPathIngress: number | null; readPathMachine: number | null; tailMachine: number | null; kcatMachine: number | null };
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
  // indexOf, not a loop over every byte: that took this process over a second of CPU for the ~90 MB of NDJSON of the
  // tail or the read path (kcat prints offsets only), on the two cores the readers and the broker share, and the tail
  // waited for it on a full pipe.
  for await (const chunk of stream as AsyncIterable<Uint8Array>) {
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    for (let i = bytes.indexOf(10); i !== -1; i = bytes.indexOf(10, i + 1)) lines++;
  }
  return lines;
}

type Reader = 'readPath' | 'tail' | 'kcat';

/** One reader's pass over the records: how many it read, in how many ms. */
async function readOnce(reader: Reader, ingressUrl: string, topic: string, records: number, env: { brokers: string[]; registryUrl: string }): Promise<number> {
  if (reader === 'readPath') {
    // node:http, not fetch: fetch's web stream took this process ~0.4 s more CPU than the ingress's own for 200,000
    // records (GET read with fetch 0.82-0.92 s, node:http 0.53-0.68 s, curl 0.40-0.45 s), on the cores they share.
    const response = await new Promise<IncomingMessage>((resolve, reject) =>
      get(`${ingressUrl}/v1/topics/${encodeURIComponent(topic)}/records?from=beginning&max=${records}`, resolve).once('error', reject),
    );
    return countLines(response);
  }
  if (reader === 'kcat') {
    const result = spawnSync('kcat', ['-C', '-b', env.brokers.join(','), '-t', topic, '-o', 'beginning', '-c', String(records), '-q', '-f', '%o\n'], { maxBuffer: 256 * 1024 * 1024 });
    return result.error || result.status !== 0 ? -1 : result.stdout.toString('utf8').split('\n').length - 1;
  }
  const child = spawn(
    process.execPath,
    ['--disable-warning=TimeoutNegativeWarning', `${PROJECT_ROOT}/bin/sluice.js`, 'tail', topic, '--from-beginning', '--max', String(records), '--format', 'ndjson'],
    {
      env: { ...process.env, KAFKA_BROKERS: env.brokers.join(','), SLUICE_REGISTRY_URL: env.registryUrl, SLUICE_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  return countLines(child.stdout);
}

/**
 * `records` from the beginning of `topic` read three ways, alternated over `rounds` rounds (medians): GET …/records
 * as NDJSON, `sluice tail` as a user runs it (NDJSON to a pipe), and kcat (librdkafka, raw). CPU µs per record of the
 * whole machine for each (the tail and kcat are short-lived children /proc cannot follow to their end), and of the
 * ingress process for the read path.
 */
export async function measureReadPath(ingressUrl: string, topic: string, records: number, env: { brokers: string[]; registryUrl: string }, ingressPid?: number, rounds = 3): Promise<ReadPathFigures> {
  const rates: Record<Reader, number[]> = { readPath: [], tail: [], kcat: [] };
  const machineCpu: Record<Reader, number[]> = { readPath: [], tail: [], kcat: [] };
  const readPathCpu: number[] = [];
  const order: Reader[] = ['kcat', 'tail', 'readPath'];
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < order.length; i++) {
      const reader = order[(i + r) % order.length]!;
      const before = cpuSeconds(ingressPid ?? process.pid);
      const started = performance.now();
      const read = await readOnce(reader, ingressUrl, topic, records, env);
      const ms = performance.now() - started;
      if (reader === 'kcat' && read < 0) continue;
      if (read !== records) throw new Error(`${reader} read ${read} of ${records} records`);
      rates[reader].push(Math.round((read * 1000) / ms));
      const cpu = cpuUsPerEvent(before, cpuSeconds(ingressPid ?? process.pid), read);
      if (cpu) {
        machineCpu[reader].push(cpu.machine);
        if (reader === 'readPath' && ingressPid !== undefined) readPathCpu.push(cpu.process);
      }
    }
  }
  const med = (xs: number[]): number | null => (xs.length === 0 ? null : Math.round(median(xs)));
  return {
    records,
    rounds,
    readPathEventsPerSec: med(rates.readPath)!,
    tailEventsPerSec: med(rates.tail)!,
    kcatEventsPerSec: med(rates.kcat),
    cpuUsPerRecord: { readPathIngress: med(readPathCpu), readPathMachine: med(machineCpu.readPath), tailMachine: med(machineCpu.tail), kcatMachine: med(machineCpu.kcat) },
  };
}
