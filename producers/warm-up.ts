import type { Logger } from '../core/logger.ts';
import type { KafkaConnection } from './kafka-connection.ts';

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
  let timer: NodeJS.Timeout | undefined;
  const connected = await Promise.race([
    connecting,
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (connected === undefined) log.warn({ topics, timeoutMs }, 'Kafka has not answered yet; the ingress starts anyway');
  return connected;
}
