/**
 * A/B of `sluice tail --format ndjson` to a pipe: two checkouts (SLUICE_A, SLUICE_B: project roots) and kcat read
 * the same topic of N orders.placed-shaped records, alternated for R rounds; per reader the median records/s and
 * CPU µs per record of its process (user + system, /usr/bin/time), and a hash of each output's lines (A and B must
 * print the same lines; their order across partitions depends on how fetches split them).
 *
 *   node bench/tail-ab.ts --a /path/to/old --b . [--records 400000] [--rounds 5] [--brokers host:port] [--headers]
 *     [--batch records per produced batch (default 10000; the bench's ingress-written topic has a few)]
 *     [--keep (the topic stays) | --topic name (one kept before, of --records records)]
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { createTypes, encodeAvro } from '../core/formats/avro-types.ts';
import { loadConfig, PROJECT_ROOT } from '../core/config.ts';
import { createLogger } from '../core/logger.ts';
import { RegistryClient } from '../core/registry-client.ts';
import { frame } from '../core/wire-format.ts';
import { startRegistry } from '../registry/server.ts';
import { randomOrder } from '../tests/support/orders.ts';
import { alternateRounds, LineDigest } from './common.ts';

const { values: args } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string', default: PROJECT_ROOT },
    records: { type: 'string', default: '400000' },
    rounds: { type: 'string', default: '5' },
    brokers: { type: 'string' },
    topic: { type: 'string' },
    headers: { type: 'boolean', default: false },
    // Records per produced batch: the bench's read stage reads what the ingress wrote from single-event POSTs, batches
    // of a few records each, where a reader's per-batch and per-fetch costs show; kafkajs's big sends hide them.
    batch: { type: 'string', default: '10000' },
    keep: { type: 'boolean', default: false },
  },
});
const RECORDS = Number(args.records);
const PARTITIONS = 6;
const config = loadConfig(process.env, { logLevel: 'warn', logFormat: 'json', ...(args.brokers ? { kafkaBrokers: args.brokers } : {}) });
const brokers = config.kafkaBrokers ?? [`${config.kafkaHost}:${config.kafkaPort}`];
const log = createLogger(config, 'bench-tail-ab', 2);
const kafka = new Kafka({ clientId: 'bench-tail-ab', brokers, logLevel: logLevel.ERROR });
const out = (line: string) => process.stdout.write(`${line}\n`);

const registry = await startRegistry({ config, logger: log, port: 0, topic: `_schemas_bench_${randomUUID().slice(0, 8)}` });
const client = new RegistryClient(registry.url);
const admin = kafka.admin();
await admin.connect();
const topic = args.topic ?? `bench.tail-ab-${randomUUID().slice(0, 8)}`;
const schemaText = readFileSync(`${PROJECT_ROOT}/schemas/OrderPlaced.avsc`, 'utf8');
const schemaId = await client.register(`${topic}-value`, schemaText);
if (!args.topic) {
  const types = createTypes(schemaText);
  await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true });
  const samples = Array.from({ length: 2000 }, () => {
    const order = randomOrder();
    return { key: Buffer.from(order.orderId), value: frame(schemaId, encodeAvro(types, order)), headers: args.headers ? { 'trace-id': order.orderId, source: 'bench' } : {} };
  });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  // Big batches: four sends of 10,000 at a time, records round the partitions. Small: one send per batch, all of it
  // to one partition (kafkajs writes each send's records of a partition as one batch), 256 sends at a time.
  const batch = Math.min(Number(args.batch), 10_000);
  const big = batch === 10_000;
  let produced = 0;
  let sent = 0;
  while (produced < RECORDS) {
    const sends = [];
    for (let s = 0; s < (big ? 4 : 256) && produced < RECORDS; s++) {
      const n = Math.min(batch, RECORDS - produced);
      const from = produced;
      const partition = (i: number) => (big ? (from + i) % PARTITIONS : sent % PARTITIONS);
      sends.push(producer.send({ topic, acks: 1, messages: Array.from({ length: n }, (_, i) => ({ ...samples[(from + i) % samples.length]!, partition: partition(i) })) }));
      produced += n;
      sent++;
    }
    await Promise.all(sends);
  }
  await producer.disconnect();
}
out(`topic ${topic}: ${RECORDS.toLocaleString()} records${args.topic ? '' : `, ${Math.min(Number(args.batch), 10_000)} per produced batch`}`);

interface Run {
  rate: number;
  cpuUs: number;
  sha: string;
}

async function timed(command: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  const started = performance.now();
  const child = spawn('/usr/bin/time', ['-f', '%U %S', ...command], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  // The lines' order across partitions depends on how fetches split them: LineDigest sums each line's hash.
  const digest = new LineDigest();
  child.stdout.on('data', (chunk: Buffer) => digest.add(chunk));
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const ms = performance.now() - started;
  if (code !== 0) throw new Error(`${command.join(' ')} exited ${code}: ${stderr}`);
  const [user, system] = stderr.trim().split('\n').at(-1)!.split(' ').map(Number);
  const { lines } = digest;
  if (lines !== RECORDS) throw new Error(`${command[0]} printed ${lines} lines`);
  return { rate: (lines * 1000) / ms, cpuUs: ((user! + system!) * 1e6) / lines, sha: digest.hash };
}

const tailOf = (root: string) => () =>
  timed(
    [
      process.execPath,
      '--disable-warning=TimeoutNegativeWarning',
      `${root}/bin/sluice.js`,
      'tail',
      topic,
      '--from-beginning',
      '--max',
      String(RECORDS),
      '--format',
      'ndjson',
      ...(args.headers ? ['--headers'] : []),
    ],
    {
      ...process.env,
      KAFKA_BROKERS: brokers.join(','),
      SLUICE_REGISTRY_URL: registry.url,
      SLUICE_LOG_LEVEL: 'warn',
    },
  );
// Stops at the count, as the tails' --max and `npm run bench` do: with -e kcat also waited for every partition's end (one
// more fetch each, ~0.5 s of a 0.3 s read), so its rate read low and the tails' ratios to it high.
const kcat = () => timed(['kcat', '-C', '-b', brokers.join(','), '-t', topic, '-o', 'beginning', '-c', String(RECORDS), '-q', '-f', '%o\n'], process.env);
const contenders: [string, () => Promise<Run>][] = [['kcat', kcat], ...(args.a ? [['A', tailOf(args.a)] as [string, () => Promise<Run>]] : []), ['B', tailOf(args.b)]];

const runs = await alternateRounds(contenders, Number(args.rounds), (r) => `${Math.round(r.rate).toLocaleString()}/s ${r.cpuUs.toFixed(2)} µs ${r.sha}`, out);
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const kcatRate = median(runs.get('kcat')!.map((r) => r.rate));
for (const [name] of contenders) {
  const list = runs.get(name)!;
  const rate = median(list.map((r) => r.rate));
  out(
    `${name.padEnd(5)} median ${Math.round(rate).toLocaleString().padStart(10)}/s  CPU ${median(list.map((r) => r.cpuUs)).toFixed(2)} µs/record  ÷ kcat ${(rate / kcatRate).toFixed(2)}  outputs ${[...new Set(list.map((r) => r.sha))].join(',')}`,
  );
}
// Per round ratios (B ÷ kcat in the same round), the figure the issue names.
const ratios = runs.get('B')!.map((r, i) => r.rate / runs.get('kcat')![i]!.rate);
out(`B ÷ kcat per round: ${ratios.map((r) => r.toFixed(2)).join(' ')}; median ${median(ratios).toFixed(2)}`);
if (args.a)
  out(
    `A ÷ kcat per round: ${runs
      .get('A')!
      .map((r, i) => (r.rate / runs.get('kcat')![i]!.rate).toFixed(2))
      .join(' ')}`,
  );

if (!args.topic && !args.keep) await admin.deleteTopics({ topics: [topic] });
await admin.disconnect();
await registry.close();
