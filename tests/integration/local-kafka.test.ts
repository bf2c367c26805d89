import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../../core/config.ts';
import { LocalKafkaError } from '../../core/errors.ts';
import { createLogger } from '../../core/logger.ts';
import { createKafka } from '../../kafka/index.ts';
import { brokerAnswers, ensureKafkaJars, localKafkaOptions, runningPid, startLocalKafka, stopLocalKafka, type LocalKafkaOptions } from '../../broker/broker.ts';
import { freePort } from '../support/processes.ts';

const log = createLogger({ logLevel: 'warn', logFormat: 'json', instanceId: 'test' }, 'local-kafka-test');

describe('the embedded broker (npm run kafka:up / kafka:down)', () => {
  const dataRoot = mkdtempSync(join(tmpdir(), 'sluice-kafka-'));
  let options: LocalKafkaOptions;

  afterAll(async () => {
    if (options) await stopLocalKafka(options.dataDir, log);
    rmSync(dataRoot, { recursive: true, force: true });
  });

  it('starts KRaft on its own ports, keeps data across a restart, and stops cleanly', async () => {
    const config = loadConfig(
      {},
      {
        dataDir: dataRoot,
        kafkaPort: String(await freePort()),
        kafkaControllerPort: String(await freePort()),
        kafkaHeap: '384m',
      },
    );
    options = localKafkaOptions(config);
    const first = await startLocalKafka(options, log);
    expect(first.started).toBe(true);
    expect(await brokerAnswers(first.brokers)).toBe(true);

    // A second start finds it running and starts nothing.
    const again = await startLocalKafka(options, log);
    expect(again).toMatchObject({ started: false, pid: first.pid });

    const kafka = createKafka(loadConfig({}, { kafkaBrokers: first.brokers.join(','), logLevel: 'silent' }), pino({ level: 'silent' }), 'local-kafka-test');
    const admin = kafka.admin();
    await admin.createTopics([{ name: 'survives', partitions: 1 }]);
    await admin.close();
    const producer = kafka.producer();
    await producer.send([{ topic: 'survives', key: Buffer.from('k'), value: Buffer.from('kept across restarts') }]);
    await producer.close();

    expect(await stopLocalKafka(options.dataDir, log)).toBe(true);
    expect(runningPid(options.dataDir)).toBeUndefined();
    expect(await brokerAnswers(first.brokers, 500)).toBe(false);

    const second = await startLocalKafka(options, log);
    expect(second.started).toBe(true);
    const offsets = await (async () => {
      const a = kafka.admin();
      try {
        return await a.watermarks('survives');
      } finally {
        await a.close();
      }
    })();
    expect(offsets).toEqual([{ partition: 0, low: 0n, high: 1n }]);
  });

  it('says what to install when Java or Maven is missing', () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      const cold = { ...localKafkaOptions(loadConfig({})), cacheDir: join(dataRoot, 'empty-cache') };
      expect(() => ensureKafkaJars(cold, log)).toThrowError(LocalKafkaError);
      expect(() => ensureKafkaJars(cold, log)).toThrowError(/`java` was not found.*Install Java 17.*or set KAFKA_BROKERS/);
    } finally {
      process.env.PATH = path;
    }
  });
});
