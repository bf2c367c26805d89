import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Schema } from 'avsc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, PROJECT_ROOT } from '../../core/config.ts';
import { createKafka } from '../../kafka/index.ts';
import { RegistryClient } from '../../core/registry-client.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { defineWorker } from '../../consumers/handler.ts';
import { createWorkerMetrics } from '../../consumers/metrics.ts';
import { scoreOrder } from '../../consumers/workers/score-orders.ts';
import type { OrderPlaced } from '../../schemas/generated/OrderPlaced.ts';
import type { OrderScored } from '../../schemas/generated/OrderScored.ts';
import { startWorker, type RunningWorker } from '../../consumers/start-worker.ts';
import { localKafkaOptions, startLocalKafka, stopLocalKafka, type LocalKafkaOptions } from '../../broker/broker.ts';
import { startRegistry, type RunningRegistry } from '../../registry/server.ts';
import { subjectFor, type Topology, type WorkerSpec } from '../../topology/model.ts';
import { inputs, orderEncoder, readOutputs, stream, tally, type OutputReader } from '../support/eos.ts';
import { failureLog, testConfig, testLogger, uniqueName } from '../support/platform.ts';
import { freePort } from '../support/processes.ts';

/**
 * Exactly once through a broker restart. The broker is a private one on free
 * ports (the shared test broker must stay up for the other test files); the
 * registry runs on the shared broker, so only the workers' cluster goes away.
 */

const INPUTS = 10_000;

/** score-orders at about 1 ms a record, so the broker stops while a backlog is being worked off. */
const slowScore = defineWorker<OrderPlaced, OrderScored>(async (order, context) => {
  await sleep(1);
  return scoreOrder(order, context.timestamp);
});

function valueSchema(topic: string, file: string) {
  const schema = JSON.parse(readFileSync(`${PROJECT_ROOT}/schemas/${file}`, 'utf8')) as Schema;
  return { file, subject: subjectFor(topic), schema, text: JSON.stringify(schema) };
}

describe('exactly-once workers through a broker stop and start', () => {
  const dataRoot = mkdtempSync(join(tmpdir(), 'sluice-eos-broker-'));
  // Quiet when it passes; when it fails, the workers' and brokers' last lines and the counts (a CI run on a loaded box
  // once had 6,077 of 10,000 outputs after 90 s, where alone the run takes ~15 s).
  const captured = failureLog('eos-broker');
  const log = process.env.SLUICE_TEST_LOG_LEVEL ? testLogger(loadConfig({}, { logLevel: process.env.SLUICE_TEST_LOG_LEVEL, logFormat: 'json' }), 'eos-broker') : captured.logger;
  let kafkaOptions: LocalKafkaOptions | undefined;
  let brokers: string[];
  let registry: RunningRegistry;
  let reader: OutputReader | undefined;
  const workers: RunningWorker[] = [];

  beforeAll(async () => {
    const shared = testConfig();
    registry = await startRegistry({ config: shared, logger: log, port: 0, topic: shared.registryTopic });
    kafkaOptions = localKafkaOptions(loadConfig({}, { dataDir: dataRoot, kafkaPort: String(await freePort()), kafkaControllerPort: String(await freePort()), kafkaHeap: '384m' }));
    brokers = (await startLocalKafka(kafkaOptions, log)).brokers;
  });
  afterAll(async () => {
    await Promise.allSettled(workers.map((w) => w.stop()));
    await reader?.close();
    if (kafkaOptions) await stopLocalKafka(kafkaOptions.dataDir, log);
    await registry?.close();
    rmSync(dataRoot, { recursive: true, force: true });
  });

  it(`re-emits each of ${INPUTS} inputs once across the restart`, async () => {
    const config = testConfig({ kafkaBrokers: brokers.join(','), workerBatchSize: '200', workerSessionTimeoutMs: '6000', shutdownTimeoutMs: '20000' });
    const [input, output, deadLetter] = [uniqueName('restart.placed'), uniqueName('restart.scored'), uniqueName('restart.dlq')];
    const kafka = createKafka(config, log, 'eos-restart');
    const admin = kafka.admin();
    await admin.createTopics([
      { name: input, partitions: 4 },
      { name: output, partitions: 4 },
      { name: deadLetter, partitions: 1 },
    ]);
    await admin.close();

    const spec: WorkerSpec = {
      name: 'score-orders',
      input,
      output,
      deadLetter,
      groupId: uniqueName('sluice.eos-restart'),
      handler: `${PROJECT_ROOT}/consumers/workers/score-orders.ts`,
      delivery: 'exactly-once',
    };
    const topology: Topology = {
      file: `${PROJECT_ROOT}/tests/(broker restart)`,
      topics: [
        { name: input, partitions: 4, replicationFactor: 1, configs: {}, valueSchema: valueSchema(input, 'OrderPlaced.avsc') },
        { name: output, partitions: 4, replicationFactor: 1, configs: {}, valueSchema: valueSchema(output, 'OrderScored.avsc') },
        { name: deadLetter, partitions: 1, replicationFactor: 1, configs: {} },
      ],
      routes: [],
      workers: [spec],
    };
    captured.arm(() => {
      const outputsByPartition: Record<number, number> = {};
      for (const m of reader?.messages ?? []) outputsByPartition[m.partition] = (outputsByPartition[m.partition] ?? 0) + 1;
      return { outputs: reader?.messages.length, outputsByPartition, workers: workers.map((w) => w.counters) };
    });
    const client = new RegistryClient(registry.url);
    for (let i = 0; i < 2; i++) {
      workers.push(await startWorker({ config, logger: log, spec, topology, registry: client, metrics: createWorkerMetrics(), handler: slowScore }));
    }
    reader = await readOutputs(brokers, output, uniqueName('eos-reader'), log.child({ component: 'output-reader' }));

    const { ids, records } = inputs(INPUTS, await orderEncoder(client, input));
    const producer = kafka.producer();
    await stream(producer, input, records.slice(0, INPUTS / 2), 1000, 0);
    await reader.waitFor(1000, 30_000, 0);
    await producer.close();

    // Mid-stream: half the inputs are in, some outputs are out, transactions are open.
    await stopLocalKafka(kafkaOptions!.dataDir, log);
    expect(reader.messages.length).toBeLessThan(INPUTS / 2);
    await startLocalKafka(kafkaOptions!, log);

    const again = kafka.producer();
    await stream(again, input, records.slice(INPUTS / 2), 1000, 0);
    await again.close();

    const outputs = await reader.waitFor(INPUTS, 90_000);
    expect(tally(outputs, ids)).toEqual({ total: INPUTS, distinct: INPUTS, missing: 0 });
    // A broker stop and start take 10-40 s on a busy two-core machine: more than the default 60 s budget can spare.
  }, 150_000);
});
