/**
 * A/B of the HTTP read path (GET /v1/topics/<t>/records?from=beginning&max=N, NDJSON), as the bench's read stage
 * measures it: an ingress from each of two checkouts (SLUICE_A, SLUICE_B: project roots) and kcat read the first N
 * records of a kept topic (bench/tail-ab.ts --keep [--batch n] writes one), alternated for R rounds; per reader the
 * median records/s, the CPU µs per record of the ingress process (/proc) and a hash of the lines (A and B must send
 * the same lines; their order across partitions depends on how fetches split them).
 *
 *   node bench/read-ab.ts --a /path/to/old --b . --topic name [--records 200000] [--rounds 5] [--brokers host:port]
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { get, type IncomingMessage } from 'node:http';
import { parseArgs } from 'node:util';
import { loadConfig, PROJECT_ROOT } from '../core/config.ts';
import { createLogger } from '../core/logger.ts';
import { RegistryClient } from '../core/registry-client.ts';
import { startRegistry } from '../registry/server.ts';
import { alternateRounds, cpuSeconds, LineDigest, median, spawnBench, type BenchEnv, type Child } from './common.ts';

const { values: args } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string', default: PROJECT_ROOT },
    topic: { type: 'string' },
    records: { type: 'string', default: '200000' },
    rounds: { type: 'string', default: '5' },
    brokers: { type: 'string' },
  },
});
if (args.topic === undefined || args.a === undefined) throw new Error('usage: node bench/read-ab.ts --a <root> [--b <root>] --topic <kept topic> [--records N] [--rounds R]');
const topic = args.topic;
const RECORDS = Number(args.records);
const config = loadConfig(process.env, { logLevel: 'warn', logFormat: 'json', ...(args.brokers ? { kafkaBrokers: args.brokers } : {}) });
const brokers = config.kafkaBrokers ?? [`${config.kafkaHost}:${config.kafkaPort}`];
const log = createLogger(config, 'bench-read-ab', 2);
const out = (line: string) => process.stdout.write(`${line}\n`);

const runId = randomUUID().slice(0, 8);
const registry = await startRegistry({ config, logger: log, port: 0, topic: `_schemas_bench_${runId}` });
await new RegistryClient(registry.url).register(`${topic}-value`, readFileSync(`${PROJECT_ROOT}/schemas/OrderPlaced.avsc`, 'utf8'));
const env: BenchEnv = {
  brokers,
  registryUrl: registry.url,
  runId,
  inputTopic: topic,
  outputTopic: `${topic}.scored-unused`,
  deadLetterTopic: `${topic}.dlq-unused`,
  partitions: 6,
};

interface Run {
  rate: number;
  cpuUs: number | null;
  sha: string;
}

async function readPath(url: string, pid: number): Promise<Run> {
  const before = cpuSeconds(pid);
  const started = performance.now();
  // node:http, as the bench's read stage (fetch's web stream costs the client more CPU than the ingress spends).
  const response = await new Promise<IncomingMessage>((resolve, reject) => get(`${url}/v1/topics/${encodeURIComponent(topic)}/records?from=beginning&max=${RECORDS}`, resolve).once('error', reject));
  const digest = new LineDigest();
  for await (const chunk of response) digest.add(chunk as Buffer);
  const { lines } = digest;
  const sha = digest.hash;
  const ms = performance.now() - started;
  const after = cpuSeconds(pid);
  if (lines !== RECORDS) throw new Error(`the read path sent ${lines} lines`);
  return { rate: (lines * 1000) / ms, cpuUs: before && after ? ((after.process - before.process) * 1e6) / lines : null, sha };
}

function kcat(): Run {
  const started = performance.now();
  const result = spawnSync('kcat', ['-C', '-b', brokers.join(','), '-t', topic, '-o', 'beginning', '-c', String(RECORDS), '-q', '-f', '%o\n'], { maxBuffer: 256 * 1024 * 1024 });
  const ms = performance.now() - started;
  if (result.status !== 0) throw new Error(`kcat exited ${result.status}: ${result.stderr.toString()}`);
  const lines = result.stdout.toString('latin1').split('\n').length - 1;
  if (lines !== RECORDS) throw new Error(`kcat printed ${lines} lines`);
  return { rate: (lines * 1000) / ms, cpuUs: null, sha: '-' };
}

const ingresses: [string, Child][] = [
  ['A', spawnBench('ingress.ts', [], { SLUICE_BENCH_ENV: JSON.stringify(env) }, [], args.a)],
  ['B', spawnBench('ingress.ts', [], { SLUICE_BENCH_ENV: JSON.stringify(env) }, [], args.b)],
];
try {
  const urls = new Map<string, { url: string; pid: number }>();
  for (const [name, child] of ingresses) urls.set(name, { url: String((await child.ready).url), pid: child.process.pid! });
  const contenders: [string, () => Promise<Run>][] = [
    ['kcat', async () => kcat()],
    ...ingresses.map(([name]) => [name, () => readPath(urls.get(name)!.url, urls.get(name)!.pid)] as [string, () => Promise<Run>]),
  ];
  // Both ingresses read once before anything counts (JIT, connections, the schema).
  for (const [name] of ingresses) await readPath(urls.get(name)!.url, urls.get(name)!.pid);
  const runs = await alternateRounds(contenders, Number(args.rounds), (r) => `${Math.round(r.rate).toLocaleString()}/s${r.cpuUs === null ? '' : ` ${r.cpuUs.toFixed(2)} µs`} ${r.sha}`, out);
  const kcatRates = runs.get('kcat')!.map((r) => r.rate);
  for (const [name] of contenders) {
    const list = runs.get(name)!;
    const cpu = list.flatMap((r) => (r.cpuUs === null ? [] : [r.cpuUs]));
    const ratios = list.map((r, i) => r.rate / kcatRates[i]!);
    out(
      `${name.padEnd(5)} median ${Math.round(median(list.map((r) => r.rate)))
        .toLocaleString()
        .padStart(
          10,
        )}/s${cpu.length > 0 ? `  ingress CPU ${median(cpu).toFixed(2)} µs/record` : ''}  ÷ kcat per round ${ratios.map((r) => r.toFixed(2)).join(' ')}, median ${median(ratios).toFixed(2)}  outputs ${[...new Set(list.map((r) => r.sha))].join(',')}`,
    );
  }
} finally {
  await Promise.all(ingresses.map(([, child]) => child.stop()));
  await registry.close();
}
