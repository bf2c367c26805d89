import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../core/config.ts';
import { startRegistry, type RunningRegistry } from '../../registry/server.ts';
import type { Plan } from '../../topology/plan.ts';
import { runCli, type CliResult } from '../support/cli.ts';
import { brokers, testConfig, testLogger, uniqueName, withKafkaAdmin } from '../support/platform.ts';

/**
 * `sluice topology plan/apply` and `sluice schemas check` as a user runs them,
 * against the real broker and a registry of its own, on a topology file in a
 * temp dir whose topics have unique names.
 */
describe('topology plan and apply, schemas check (real broker and registry)', () => {
  const prefix = uniqueName('topo');
  const placed = `${prefix}.placed`;
  const scored = `${prefix}.scored`;
  const dlq = `${prefix}.dlq`;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-topology-it-'));
  const file = join(dir, 'it.topology.yaml');
  let registry: RunningRegistry;
  let env: NodeJS.ProcessEnv;

  const topologyText = (o: { scoredPartitions?: number; retention?: string; withDlq?: boolean } = {}): string => `# yaml-language-server: $schema=topology.schema.json
topics:
  - name: ${placed}
    partitions: 3
    valueSchema: OrderPlaced.avsc
    compatibility: BACKWARD
    configs:
      cleanup.policy: delete
      retention.ms: "${o.retention ?? '604800000'}"
  - name: ${scored}
    partitions: ${o.scoredPartitions ?? 2}
    valueSchema: OrderScored.avsc
${o.withDlq === false ? '' : `  - name: ${dlq}\n`}routes:
  - path: /v1/orders
    topic: ${placed}
    key: orderId
`;

  const writeTopology = (o?: Parameters<typeof topologyText>[0]) => writeFileSync(file, topologyText(o));
  const sluice = (...args: string[]): Promise<CliResult> => runCli(args, env);
  const planJson = async (...extra: string[]): Promise<{ result: CliResult; plan: Plan }> => {
    const result = await sluice('topology', 'plan', '--json', ...extra);
    return { result, plan: JSON.parse(result.stdout) as Plan };
  };
  const partitionsOf = (topic: string) => withKafkaAdmin((admin) => admin.partitionCount(topic));

  beforeAll(async () => {
    const config = testConfig();
    registry = await startRegistry({ config, logger: testLogger(config, 'registry'), port: 0, topic: config.registryTopic });
    for (const avsc of ['OrderPlaced.avsc', 'OrderScored.avsc']) copyFileSync(join(PROJECT_ROOT, 'schemas', avsc), join(dir, avsc));
    writeTopology();
    env = {
      KAFKA_BROKERS: brokers().join(','),
      SLUICE_REGISTRY_URL: registry.url,
      SLUICE_TOPOLOGY: file,
      SLUICE_TOPOLOGY_STATE_TOPIC: uniqueName('_sluice_topology_test'),
    };
  });

  afterAll(async () => {
    await registry?.close();
    await withKafkaAdmin((admin) => admin.deleteTopics([placed, scored, dlq])).catch(() => undefined);
  });

  it('plans every topic and schema of a new topology; --detailed-exitcode gives 2', async () => {
    const { result, plan } = await planJson('--detailed-exitcode');
    expect(result.code, result.stderr).toBe(2);
    expect(plan.errors).toEqual([]);
    expect(plan.actions.map((a) => `${a.type} ${'topic' in a && a.type !== 'register-schema' ? a.topic : 'subject' in a ? a.subject : ''}`)).toEqual([
      `create-topic ${placed}`,
      `create-topic ${scored}`,
      `create-topic ${dlq}`,
      `set-compatibility ${placed}-value`,
      `register-schema ${placed}-value`,
      `register-schema ${scored}-value`,
    ]);
  });

  it('applies it; plan then has nothing to do (exit 0 even with --detailed-exitcode)', async () => {
    const apply = await sluice('topology', 'apply', '--auto-approve');
    expect(apply.code, apply.stdout + apply.stderr).toBe(0);
    expect(apply.stdout).toContain(`+ create topic ${placed} (3 partitions`);
    expect(apply.stdout).toMatch(/Apply complete: 6 change\(s\) applied/);
    const { result, plan } = await planJson('--detailed-exitcode');
    expect(result.code).toBe(0);
    expect(plan).toEqual({ actions: [], errors: [] });
    const human = await sluice('topology', 'plan');
    expect(human.stdout).toContain('No changes');
  });

  it('notices a topic deleted behind its back and recreates it with its partition count', async () => {
    await withKafkaAdmin((admin) => admin.deleteTopics([scored]));
    const { result, plan } = await planJson('--detailed-exitcode');
    expect(result.code).toBe(2);
    expect(plan.actions).toEqual([{ type: 'create-topic', topic: scored, partitions: 2, replicationFactor: 1, configs: { 'min.insync.replicas': '1' } }]);
    const apply = await sluice('topology', 'apply');
    expect(apply.code, apply.stdout + apply.stderr).toBe(0);
    expect(await partitionsOf(scored)).toBe(2);
    expect((await planJson()).plan.actions).toEqual([]);
  });

  it('adds partitions and alters configs, keeping the configs it does not change', async () => {
    writeTopology({ scoredPartitions: 4, retention: '86400000' });
    const { plan } = await planJson();
    expect(plan.actions).toEqual([
      { type: 'alter-topic-configs', topic: placed, changes: [{ name: 'retention.ms', from: '604800000', to: '86400000' }] },
      { type: 'add-partitions', topic: scored, from: 2, to: 4 },
    ]);
    expect((await sluice('topology', 'apply', '--auto-approve')).code).toBe(0);
    expect(await partitionsOf(scored)).toBe(4);
    expect((await planJson()).plan.actions).toEqual([]);
  });

  it('refuses fewer partitions with exit 1 and applies nothing', async () => {
    writeTopology({ scoredPartitions: 1, retention: '86400000' });
    const { result, plan } = await planJson();
    expect(result.code).toBe(1);
    expect(plan.errors).toMatchObject([{ type: 'fewer-partitions', topic: scored }]);
    const apply = await sluice('topology', 'apply', '--auto-approve');
    expect(apply.code).toBe(1);
    expect(apply.stdout).toContain('Nothing was applied');
    expect(await partitionsOf(scored)).toBe(4);
  });

  it('refuses a topic removed from the file unless --allow-delete', async () => {
    writeTopology({ scoredPartitions: 4, retention: '86400000', withDlq: false });
    const refused = await planJson();
    expect(refused.result.code).toBe(1);
    expect(refused.plan.errors).toMatchObject([{ type: 'topic-removed', topic: dlq }]);
    const allowed = await planJson('--allow-delete');
    expect(allowed.result.code).toBe(0);
    expect(allowed.plan.actions).toEqual([{ type: 'delete-topic', topic: dlq }]);
    writeTopology({ scoredPartitions: 4, retention: '86400000' });
  });

  it('schemas check passes, then fails naming the field when a string becomes an int without a default', async () => {
    const ok = await sluice('schemas', 'check');
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    const avsc = join(dir, 'OrderScored.avsc');
    writeFileSync(avsc, readFileSync(avsc, 'utf8').replace('{ "name": "customerId", "type": "string" }', '{ "name": "customerId", "type": "int" }'));
    const failed = await sluice('schemas', 'check');
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/FAIL\s+incompatible\s+\S+\.scored-value/);
    expect(failed.stdout).toMatch(/customerId: TYPE_MISMATCH/);
    const { result, plan } = await planJson();
    expect(result.code).toBe(1);
    expect(plan.errors).toMatchObject([{ type: 'incompatible-schema', subject: `${scored}-value` }]);
  });
});
