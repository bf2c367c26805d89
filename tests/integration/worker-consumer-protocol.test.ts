import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inputs, readOutputs, stream, tally, type OutputReader } from '../support/eos.ts';
import { brokers, seam, uniqueName } from '../support/platform.ts';
import { workerHarness, type WorkerHarness } from '../support/workers.ts';

/**
 * Workers on the `consumer` group protocol (KIP-848, Kafka >= 4.0): a member
 * joining does not stop the others, and exactly once still holds. Skipped on
 * a broker without ConsumerGroupHeartbeat (the 3.9 test broker); it runs once
 * the test broker is 4.x.
 */

let supported = false;

beforeAll(async () => {
  supported = await seam('protocol-probe').supportsConsumerProtocol();
});

describe('workers on the consumer group protocol (KIP-848)', () => {
  let h: WorkerHarness | undefined;
  let reader: OutputReader | undefined;
  afterAll(async () => {
    await reader?.close();
    await h?.close();
  });

  it('processes every input exactly once while a second member joins', async (context) => {
    if (!supported) context.skip('the broker does not speak the consumer group protocol (KIP-848 needs Kafka >= 4.0)');
    h = await workerHarness({ partitions: 6, configOverrides: { workerGroupProtocol: 'consumer', workerBatchSize: '200' } });
    reader = await readOutputs(brokers(), h.spec.output, uniqueName('kip848-reader'));
    await h.start(undefined, { delivery: 'exactly-once' });
    const { ids, records } = inputs(4000, h.orders);
    const sending = stream(h.producer, h.spec.input, records, 250, 50);
    await reader.waitFor(1000, 60_000, 0);
    await h.start(undefined, { delivery: 'exactly-once' });
    await sending;
    const outputs = await reader.waitFor(4000, 60_000, 3000);
    expect(tally(outputs, ids)).toEqual({ total: 4000, distinct: 4000, missing: 0 });
  });
});
