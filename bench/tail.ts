/**
 * How fast `sluice tail` decodes: N orders.placed-shaped records (default
 * 1,000,000) on a fresh topic, read three ways in one run on one broker:
 *   kcat        librdkafka reading raw bytes (the ceiling for any reader)
 *   kafkajs     a plain kafkajs consumer decoding each value with avsc (no output)
 *   sluice tail the CLI as a user runs it: decode, filter-free, ndjson to a pipe
 * Goal: >= 100,000 decoded events/s and within 2x of kcat.
 *
 *   node bench/tail.ts [--records N] [--brokers host:port]
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { createResolvingDecoder, createTypes, encodeAvro } from '../core/formats/avro-types.ts';
import { loadConfig, PROJECT_ROOT } from '../core/config.ts';
import { createLogger } from '../core/logger.ts';
import { RegistryClient } from '../core/registry-client.ts';
import { frame, unframe } from '../core/wire-format.ts';
import { startRegistry } from '../registry/server.ts';
import { randomOrder } from '../tests/support/orders.ts';

const { values: args } = parseArgs({ options: { records: { type: 'string', default: '1000000' }, brokers: { type: 'string' } } });
const RECORDS = Number(args.records);
const PARTITIONS = 6;
const config = loadConfig(process.env, { logLevel: 'warn', logFormat: 'json', ...(args.brokers ? { kafkaBrokers: args.brokers } : {}) });
const brokers = config.kafkaBrokers ?? [`${config.kafkaHost}:${config.kafkaPort}`];
const log = createLogger(config, 'bench-tail', 2);
const kafka = new Kafka({ clientId: 'bench-tail', brokers, logLevel: logLevel.ERROR });
const out = (line: string) => process.stdout.write(`${line}\n`);

const topic = `bench.orders.placed-${randomUUID().slice(0, 8)}`;
const registry = await startRegistry({ config, logger: log, port: 0, topic: `_schemas_bench_${randomUUID().slice(0, 8)}` });
const client = new RegistryClient(registry.url);
const schemaText = readFileSync(`${PROJECT_ROOT}/schemas/OrderPlaced.avsc`, 'utf8');
const schemaId = await client.register(`${topic}-value`, schemaText);
const types = createTypes(schemaText);

const admin = kafka.admin();
await admin.connect();
await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true });

// Distinct events, cycled: encoding a million random ones would time the generator, not the reader.
const samples = Array.from({ length: 2000 }, () => {
  const order = randomOrder();
  return { key: Buffer.from(order.orderId), value: frame(schemaId, encodeAvro(types, order)) };
});
const producer = kafka.producer({ allowAutoTopicCreation: false });
await producer.connect();
let produced = 0;
const t0 = performance.now();
while (produced < RECORDS) {
  const sends = [];
  for (let s = 0; s < 4 && produced < RECORDS; s++) {
    const n = Math.min(10_000, RECORDS - produced);
    const messages = Array.from({ length: n }, (_, i) => ({ ...samples[(produced + i) % samples.length]!, partition: (produced + i) % PARTITIONS }));
    produced += n;
    sends.push(producer.send({ topic, messages, acks: 1 }));
  }
  await Promise.all(sends);
}
await producer.disconnect();
const bytes = samples.reduce((s, m) => s + m.value.length, 0) / samples.length;
out(`topic ${topic}: ${RECORDS.toLocaleString()} records (~${Math.round(bytes)} B values) produced in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

function rate(name: string, records: number, ms: number): number {
  const perSecond = (records * 1000) / ms;
  out(`${name.padEnd(12)} ${records.toLocaleString().padStart(10)} records in ${(ms / 1000).toFixed(2).padStart(6)} s = ${Math.round(perSecond).toLocaleString().padStart(9)} /s`);
  return perSecond;
}

function kcat(): number {
  const started = performance.now();
  // Stops at the count, as the other readers do: -e also waits for every partition's end (~0.5 s more).
  const result = spawnSync('kcat', ['-C', '-b', brokers.join(','), '-t', topic, '-o', 'beginning', '-c', String(RECORDS), '-q', '-f', '%o\n'], { maxBuffer: 1024 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`kcat failed: ${result.stderr.toString()}`);
  const lines = result.stdout.toString('latin1').split('\n').length - 1;
  return rate('kcat (raw)', lines, performance.now() - started);
}

async function kafkajsDecoding(): Promise<number> {
  const decoder = createResolvingDecoder(types);
  const consumer = kafka.consumer({ groupId: `bench-tail-${randomUUID()}`, maxBytes: 64 * 1024 * 1024, maxBytesPerPartition: 16 * 1024 * 1024, maxWaitTimeInMs: 200 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let seen = 0;
  let sink = 0;
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        autoCommit: false,
        partitionsConsumedConcurrently: PARTITIONS,
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) {
            const value = decoder.decode(unframe(m.value).payload) as { amount: number };
            sink += value.amount;
            seen++;
          }
          if (seen >= RECORDS) resolve();
        },
      })
      .catch(reject);
  });
  const ms = performance.now() - started;
  await consumer.disconnect();
  if (Number.isNaN(sink)) throw new Error('decoded nonsense');
  return rate('kafkajs+avsc', seen, ms);
}

async function sluiceTail(): Promise<number> {
  const started = performance.now();
  const child = spawn(
    process.execPath,
    ['--disable-warning=TimeoutNegativeWarning', `${PROJECT_ROOT}/bin/sluice.js`, 'tail', topic, '--from-beginning', '--max', String(RECORDS), '--format', 'ndjson'],
    {
      env: { ...process.env, KAFKA_BROKERS: brokers.join(','), SLUICE_REGISTRY_URL: registry.url, SLUICE_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let lines = 0;
  child.stdout.on('data', (chunk: Buffer) => {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`sluice tail exited ${code}`);
  return rate('sluice tail', lines, performance.now() - started);
}

const kcatRate = kcat();
const kafkajsRate = await kafkajsDecoding();
const tailRate = await sluiceTail();
out(
  `sluice tail: ${Math.round(tailRate).toLocaleString()} decoded/s (goal >= 100,000: ${tailRate >= 100_000 ? 'met' : 'NOT met'}); kcat is ${(kcatRate / tailRate).toFixed(2)}x faster (goal <= 2x: ${kcatRate / tailRate <= 2 ? 'met' : 'NOT met'}); kafkajs+avsc ${Math.round(kafkajsRate).toLocaleString()}/s`,
);

await admin.deleteTopics({ topics: [topic] });
await admin.disconnect();
await registry.close();
