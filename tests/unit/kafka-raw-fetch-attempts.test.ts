import { kPerformWithRetry, NetworkError, type Callback } from '@platformatic/kafka';
import { afterEach, describe, expect, it } from 'vitest';
import { RawFetchConsumer } from '../../kafka/raw-fetch.ts';

/** How many times the client runs `operationId` when every attempt fails with a retriable error. */
async function attempts(consumer: RawFetchConsumer, operationId: string): Promise<number> {
  let count = 0;
  await new Promise<void>((resolve) => {
    consumer[kPerformWithRetry]<void>(
      operationId,
      (callback: Callback<void>) => {
        count++;
        callback(new NetworkError('connection refused'), undefined as never);
      },
      (() => resolve()) as never,
    );
  });
  return count;
}

describe('RawFetchConsumer.singleAttemptFetch', () => {
  // No broker: the client connects lazily, and nothing here asks it to.
  const consumers: RawFetchConsumer[] = [];
  const consumer = (): RawFetchConsumer => {
    const c = new RawFetchConsumer({ clientId: 'raw-fetch-test', bootstrapBrokers: ['127.0.0.1:1'], groupId: 'raw-fetch-test', retries: 2, retryDelay: 1 });
    consumers.push(c);
    return c;
  };
  afterEach(async () => {
    await Promise.all(consumers.splice(0).map((c) => c.close(true).catch(() => undefined)));
  });

  it('makes a fetch one attempt, so the caller plans the next one from the leaders it reads then', async () => {
    const c = consumer();
    c.singleAttemptFetch = true;
    expect(await attempts(c, 'fetch')).toBe(1);
  });

  it('leaves every other operation, and a fetch by default, to the client’s retries', async () => {
    const c = consumer();
    c.singleAttemptFetch = true;
    expect(await attempts(c, 'metadata')).toBe(3);
    expect(await attempts(consumer(), 'fetch')).toBe(3);
  });
});
