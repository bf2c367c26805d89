import { spawnSync } from 'node:child_process';
import type { SluiceConfig } from '../core/config.ts';
import type { Logger } from '../core/logger.ts';
import { AtomicProducer, createKafka, type OutgoingRecord } from '../kafka/index.ts';
import { processCpuSeconds, round } from './common.ts';

/**
 * The Kafka-side cost of a keyed (Idempotency-Key) event, without HTTP: the
 * seam's transactions of `size` events plus one response record each, as the
 * ingress writes them, on one transactional id back to back and on two taken
 * in turn, beside the same events sent without a transaction. Reports
 * events/s and CPU per event of this process (the client) and of the broker
 * when it runs on this machine.
 */

export interface TransactionLane {
  eventsPerSec: number;
  clientUsPerEvent: number;
  /** null when the broker's process is not on this machine (or not only one). */
  brokerUsPerEvent: number | null;
}

export interface TransactionFigures {
  eventsPerTransaction: number;
  plain: TransactionLane;
  oneId: TransactionLane;
  twoIdsInTurn: TransactionLane;
}

/** CPU seconds of the one local Kafka broker process; undefined when there is not exactly one, or off Linux. */
function brokerCpuSeconds(): number | undefined {
  const pids = spawnSync('pgrep', ['-f', 'kafka\\.Kafka'], { encoding: 'utf8' }).stdout?.trim().split('\n').filter(Boolean) ?? [];
  return pids.length === 1 ? processCpuSeconds(Number(pids[0])) : undefined;
}

export async function measureTransactions(config: SluiceConfig, logger: Logger, runId: string, durationS: number, size = 60): Promise<TransactionFigures> {
  const kafka = createKafka(config, logger, 'bench-transactions');
  const admin = kafka.admin();
  const events = `bench.${runId}.tx.events`;
  const responses = `bench.${runId}.tx.responses`;
  await admin.createTopics([
    { name: events, partitions: 6 },
    { name: responses, partitions: 1 },
  ]);
  const value = Buffer.alloc(150, 'x');
  const batch = (topic: string): OutgoingRecord[] => Array.from({ length: size }, (_, i) => ({ topic, key: Buffer.from(`${runId}-${i}-${Math.random()}`), value }));
  const plain = kafka.producer();
  const ids = [0, 1].map((i) => new AtomicProducer(config, logger, { name: `bench-tx-${i}`, transactionalId: `bench-${runId}-tx-${i}` }));
  try {
    await Promise.all(ids.map((p) => p.init()));
    const lane = async (once: () => Promise<void>): Promise<TransactionLane> => {
      await once(); // warm
      const end = Date.now() + durationS * 1000;
      let sent = 0;
      const cpu = process.cpuUsage();
      const broker = brokerCpuSeconds();
      const started = performance.now();
      while (Date.now() < end) {
        await once();
        sent += size;
      }
      const seconds = (performance.now() - started) / 1000;
      const used = process.cpuUsage(cpu);
      const brokerAfter = brokerCpuSeconds();
      return {
        eventsPerSec: Math.round(sent / seconds),
        clientUsPerEvent: round((used.user + used.system) / sent, 1),
        brokerUsPerEvent: broker !== undefined && brokerAfter !== undefined ? round(((brokerAfter - broker) * 1e6) / sent, 1) : null,
      };
    };
    const write = (producer: AtomicProducer) => producer.write(batch(events), async () => batch(responses), { followTopics: [responses] });
    let turn = 0;
    return {
      eventsPerTransaction: size,
      plain: await lane(async () => void (await plain.send(batch(events)))),
      oneId: await lane(async () => void (await write(ids[0]!))),
      twoIdsInTurn: await lane(async () => void (await write(ids[turn++ % 2]!))),
    };
  } finally {
    await Promise.all([plain.close(), ...ids.map((p) => p.close())]);
    await admin.deleteTopics([events, responses]).catch(() => undefined);
    await admin.close();
  }
}
