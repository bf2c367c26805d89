import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../core/config.ts';
import { RegistryClient } from '../../core/registry-client.ts';
import { startRegistry, type RunningRegistry } from '../../registry/server.ts';
import { inputs, orderEncoder, readOutputs, stream, tally, type OutputReader } from '../support/eos.ts';
import { brokers, createTopics, seam, testConfig, testLogger, uniqueName } from '../support/platform.ts';
import { runSluice, type SluiceProcess } from '../support/processes.ts';

/**
 * Exactly once across processes: `sluice worker score-orders` processes in one
 * group, one SIGKILLed mid-stream and another started; an independent
 * read-committed consumer must find every input's output once.
 */

const INPUTS = 10_000;

function topologyFile(dir: string, names: { input: string; output: string; deadLetter: string; groupId: string }): string {
  const file = join(dir, 'eos.topology.yaml');
  writeFileSync(
    file,
    `topics:
  - { name: ${names.input}, partitions: 6, valueSchema: ${PROJECT_ROOT}/schemas/OrderPlaced.avsc }
  - { name: ${names.output}, partitions: 6, valueSchema: ${PROJECT_ROOT}/schemas/OrderScored.avsc }
  - { name: ${names.deadLetter}, partitions: 1 }
workers:
  - name: score-orders
    input: ${names.input}
    output: ${names.output}
    deadLetter: ${names.deadLetter}
    groupId: ${names.groupId}
    handler: ${PROJECT_ROOT}/consumers/workers/score-orders.ts
    delivery: exactly-once
`,
  );
  return file;
}

async function started(proc: SluiceProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!proc.output().includes('joined the consumer group')) {
    if (proc.child.exitCode !== null) throw new Error(`worker exited early:\n${proc.output().slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`worker did not join within ${timeoutMs} ms:\n${proc.output().slice(-3000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('sluice worker processes, exactly once', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-eos-'));
  const names = {
    input: uniqueName('eos.placed'),
    output: uniqueName('eos.scored'),
    deadLetter: uniqueName('eos.dlq'),
    groupId: uniqueName('sluice.eos-processes'),
  };
  const processes: SluiceProcess[] = [];
  let registry: RunningRegistry;
  let reader: OutputReader;

  beforeAll(async () => {
    const config = testConfig();
    registry = await startRegistry({ config, logger: testLogger(config, 'registry'), port: 0, topic: config.registryTopic });
    await createTopics([
      { topic: names.input, numPartitions: 6 },
      { topic: names.output, numPartitions: 6 },
      { topic: names.deadLetter, numPartitions: 1 },
    ]);
    reader = await readOutputs(brokers(), names.output, uniqueName('eos-reader'));
  });
  afterAll(async () => {
    for (const p of processes) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await reader?.close();
    await registry?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`re-emits each of ${INPUTS} inputs once while one of two workers is SIGKILLed mid-stream and another joins`, async () => {
    const env = {
      KAFKA_BROKERS: brokers().join(','),
      SLUICE_REGISTRY_URL: registry.url,
      SLUICE_TOPOLOGY: topologyFile(dir, names),
      SLUICE_WORKER_SESSION_TIMEOUT_MS: '6000',
      SLUICE_WORKER_METRICS_PORT: '0',
      SLUICE_WORKER_BATCH_SIZE: '200',
      SLUICE_LOG_LEVEL: 'info',
    };
    const worker = () => {
      const proc = runSluice(['worker', 'score-orders'], env);
      processes.push(proc);
      return proc;
    };
    const [a, b] = [worker(), worker()];
    await Promise.all([started(a), started(b)]);

    const encoder = await orderEncoder(new RegistryClient(registry.url), names.input);
    const { ids, records } = inputs(INPUTS, encoder);
    const producer = seam('eos-inputs').producer();
    try {
      const sending = stream(producer, names.input, records, 500, 150);
      await reader.waitFor(2500, 30_000, 0);
      a.child.kill('SIGKILL');
      await started(worker());
      await sending;
    } finally {
      await producer.close();
    }

    const outputs = await reader.waitFor(INPUTS, 60_000);
    expect(tally(outputs, ids)).toEqual({ total: INPUTS, distinct: INPUTS, missing: 0 });
    expect(a.output()).not.toContain('"level":60');
  });
});
