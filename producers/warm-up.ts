import type { Logger } from '../core/logger.ts';
import type { KafkaConnection } from './ingress-kafka.ts';
import { withDeadline } from '../core/deadline.ts';

/**
 * Connects early, so the first request is fast; failing here is not fatal (see KafkaConnection).
 * Bounded: a hung broker must not hold start-up for the client's whole retry schedule.
 * True when connected, false when Kafka refused, undefined when it has not answered in time.
 */
export async function warmUp(connection: KafkaConnection, timeoutMs: number, topics: string[], log: Logger): Promise<boolean | undefined> {
  const connecting = connection.warmUp().then(
    () => true,
    (error: unknown) => {
      log.warn({ err: error, topics }, 'Kafka is not reachable yet; the ingress starts anyway and answers 503 until it is');
      return false;
    },
  );
  const connected = await withDeadline(connecting, timeoutMs, () => undefined);
  if (connected === undefined) log.warn({ topics, timeoutMs }, 'Kafka has not answered yet; the ingress starts anyway');
  return connected;
}
