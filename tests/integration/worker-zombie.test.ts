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
 * A zombie: a `sluice worker` frozen (SIGSTOP) past its session timeout, its
 * partitions taken over by the other member, then resumed (SIGCONT). Whatever
 * it had handled under its old generation must commit nothing: its offsets
 * carry that generation (KIP-447) and the group coordinator refuses them, so
 * its transaction aborts. An independent read_committed reader finds every
 * input's output exactly once.
 */

const INPUTS = 10_000;
const SESSION_TIMEOUT_MS = 6000;

/** A worker's log lines saying it joined the group (one per generation it joined, with the classic protocol). */
const joinLines = (proc: SluiceProcess) =>
  proc
    .output()
    .split('\n')
    .filter((line) => line.includes('joined the consumer group'));

const joins = (proc: SluiceProcess) => joinLines(proc).length;

/** The generation of a worker's latest join, or undefined before its first. */
function generation(proc: SluiceProcess): number | undefined {
  const id = /"generationId":(\d+)/.exec(joinLines(proc).at(-1) ?? '')?.[1];
  return id === undefined ? undefined : Number(id);
}

async function until(what: string, condition: () => boolean, proc: SluiceProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (proc.child.exitCode !== null) throw new Error(`worker exited early:\n${proc.output().slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms:\n${proc.output().slice(-3000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('a frozen worker past its session timeout (zombie)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-zombie-'));
  const names = { input: uniqueName('zombie.placed'), output: uniqueName('zombie.scored'), deadLetter: uniqueName('zombie.dlq'), groupId: uniqueName('sluice.zombie') };
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
    reader = await readOutputs(brokers(), names.output, uniqueName('zombie-reader'));
  });
  afterAll(async () => {
    for (const p of processes) {
      if (p.child.exitCode === null) {
        p.child.kill('SIGCONT');
        p.child.kill('SIGKILL');
      }
    }
    await reader?.close();
    await registry?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`commits nothing once fenced: each of ${INPUTS} inputs is emitted once`, async () => {
    const topology = join(dir, 'zombie.topology.yaml');
    writeFileSync(
      topology,
      `topics:
  - { name: ${names.input}, partitions: 6, valueSchema: ${PROJECT_ROOT}/schemas/OrderPlaced.avsc }
  - { name: ${names.output}, partitions: 6, valueSchema: ${PROJECT_ROOT}/schemas/OrderScored.avsc }
  - { name: ${names.deadLetter}, partitions: 1 }
workers:
  - { name: score-orders, input: ${names.input}, output: ${names.output}, deadLetter: ${names.deadLetter}, groupId: ${names.groupId}, handler: ${PROJECT_ROOT}/consumers/workers/score-orders.ts, delivery: exactly-once }
`,
    );
    const env = {
      KAFKA_BROKERS: brokers().join(','),
      SLUICE_REGISTRY_URL: registry.url,
      SLUICE_TOPOLOGY: topology,
      // Generations and their fencing (KIP-447) are the classic protocol's, whatever the environment running the suite says.
      SLUICE_WORKER_GROUP_PROTOCOL: 'classic',
      SLUICE_WORKER_SESSION_TIMEOUT_MS: String(SESSION_TIMEOUT_MS),
      SLUICE_WORKER_METRICS_PORT: '0',
      SLUICE_WORKER_BATCH_SIZE: '200',
      SLUICE_LOG_LEVEL: 'info',
    };
    const [zombie, survivor] = [runSluice(['worker', 'score-orders'], env), runSluice(['worker', 'score-orders'], env)];
    processes.push(zombie, survivor);
    // Both in one generation: the first to start may have joined alone and then again with the other, or (started within
    // the coordinator's first rebalance) both joined the first generation together.
    await until(
      'both members in one generation',
      () => {
        const current = generation(zombie);
        return current !== undefined && current === generation(survivor);
      },
      zombie,
      90_000,
    );

    const encoder = await orderEncoder(new RegistryClient(registry.url), names.input);
    const { ids, records } = inputs(INPUTS, encoder);
    let zombieJoins = 0;
    const producer = seam('zombie-inputs').producer();
    try {
      const sending = stream(producer, names.input, records, 250, 100);
      await reader.waitFor(2000, 60_000, 0);
      zombieJoins = joins(zombie);
      zombie.child.kill('SIGSTOP');
      // Frozen past its session timeout: the coordinator evicts it and the survivor takes its partitions.
      const before = joins(survivor);
      await until('the survivor taking the partitions over', () => joins(survivor) > before, survivor, SESSION_TIMEOUT_MS * 4);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      zombie.child.kill('SIGCONT');
      await sending;
    } finally {
      await producer.close();
    }

    const outputs = await reader.waitFor(INPUTS, 90_000, 4000);
    expect(tally(outputs, ids)).toEqual({ total: INPUTS, distinct: INPUTS, missing: 0 });
    expect(zombie.output()).not.toContain('"level":60');
    // The zombie noticed: it joined again as a new member (its old generation's work did not count).
    await until('the zombie rejoining', () => joins(zombie) > zombieJoins, zombie, 30_000);
    // Two processes starting, a session timeout and 10,000 records on a busy two-core machine.
  }, 240_000);
});
