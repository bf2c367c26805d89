import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type ChannelModel, type ConsumeMessage } from 'amqplib';

/** The RabbitMQ on the machine (SLUICE_AMQP_URL or guest@127.0.0.1:5672), as tests use it. */

export const AMQP_URL = process.env.SLUICE_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

export const hasRabbitmqctl = (() => {
  const result = spawnSync('rabbitmqctl', ['--help'], { stdio: 'ignore' });
  return !result.error;
})();

export async function rabbitAnswers(): Promise<boolean> {
  try {
    const c = await connect(AMQP_URL, { timeout: 2000 });
    await c.close();
    return true;
  } catch {
    return false;
  }
}

export async function waitForRabbit(timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await rabbitAnswers()) return;
    await sleep(250);
  }
  throw new Error(`RabbitMQ at ${AMQP_URL} did not come back within ${timeoutMs} ms`);
}

export function rabbitmqctl(...args: string[]): void {
  const result = spawnSync('rabbitmqctl', args, { encoding: 'utf8', timeout: 60_000 });
  if (result.status !== 0) throw new Error(`rabbitmqctl ${args.join(' ')} failed: ${result.stdout}${result.stderr}`);
}

/**
 * A consumer of one durable queue that survives RabbitMQ restarts (it
 * reconnects) and keeps everything it received, acked after it is recorded.
 */
export interface QueueReader {
  received: ConsumeMessage[];
  waitFor(done: (messages: ConsumeMessage[]) => boolean, timeoutMs: number, what: string): Promise<void>;
  close(): Promise<void>;
}

export async function readQueue(queue: string, bind?: { exchange: string; type: string }): Promise<QueueReader> {
  const received: ConsumeMessage[] = [];
  let connection: ChannelModel | undefined;
  let closed = false;
  const open = async (): Promise<void> => {
    while (!closed) {
      try {
        const c = await connect(AMQP_URL, { timeout: 2000 });
        c.on('error', () => undefined);
        c.on('close', () => {
          if (!closed) void open();
        });
        const channel = await c.createChannel();
        if (bind) {
          await channel.assertExchange(bind.exchange, bind.type, { durable: true });
          await channel.assertQueue(queue, { durable: true });
          await channel.bindQueue(queue, bind.exchange, '');
        } else await channel.assertQueue(queue, { durable: true });
        await channel.consume(queue, (m) => {
          if (!m) return;
          received.push(m);
          channel.ack(m);
        });
        connection = c;
        return;
      } catch {
        await sleep(250);
      }
    }
  };
  await open();
  return {
    received,
    async waitFor(done, timeoutMs, what) {
      const deadline = Date.now() + timeoutMs;
      while (!done(received)) {
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (have ${received.length})`);
        await sleep(50);
      }
    },
    async close() {
      closed = true;
      await connection?.close().catch(() => undefined);
    },
  };
}

/** Deletes test exchanges and queues (best effort: a test that failed half-way may not have made them all). */
export async function cleanupAmqp(exchanges: string[], queues: string[]): Promise<void> {
  const c = await connect(AMQP_URL);
  try {
    for (const q of queues) {
      const ch = await c.createChannel();
      await ch.deleteQueue(q).catch(() => undefined);
      await ch.close().catch(() => undefined);
    }
    for (const e of exchanges) {
      const ch = await c.createChannel();
      await ch.deleteExchange(e).catch(() => undefined);
      await ch.close().catch(() => undefined);
    }
  } finally {
    await c.close();
  }
}
