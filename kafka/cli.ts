import { loadConfig } from '../core/config.ts';
import { SluiceError } from '../core/errors.ts';
import { createLogger } from '../core/logger.ts';
import { localKafkaOptions, startLocalKafka, stopLocalKafka } from './broker.ts';

/** `npm run kafka:up` / `npm run kafka:down`: the local broker on its own. */
async function main(command: string | undefined): Promise<number> {
  const config = loadConfig();
  const log = createLogger(config, 'kafka');
  if (config.kafkaBrokers) {
    log.info({ brokers: config.kafkaBrokers }, 'KAFKA_BROKERS is set: using that cluster, starting nothing');
    return 0;
  }
  const options = localKafkaOptions(config);
  if (command === 'up') {
    const kafka = await startLocalKafka(options, log);
    log.info({ brokers: kafka.brokers, pid: kafka.pid, dataDir: options.dataDir }, kafka.started ? 'Kafka started' : 'Kafka was already running');
    return 0;
  }
  if (command === 'down') {
    const stopped = await stopLocalKafka(options.dataDir, log);
    if (!stopped) log.info('no local Kafka was running');
    return 0;
  }
  log.error(`usage: node kafka/cli.ts up|down (got ${command ?? 'nothing'})`);
  return 2;
}

main(process.argv[2]).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof SluiceError ? error.message : error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
