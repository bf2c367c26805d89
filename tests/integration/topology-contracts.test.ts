import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../core/config.ts';
import { startRegistry, type RunningRegistry } from '../../registry/server.ts';
import type { Plan } from '../../topology/plan.ts';
import { runCli, type CliResult } from '../support/cli.ts';
import { brokers, testConfig, testLogger, uniqueName, withKafkaAdmin } from '../support/platform.ts';

/**
 * Data contracts declared in the topology file, as a user runs the CLI: plan shows the rules a version
 * gains or loses, apply registers them with the schema, and `sluice schemas test` prints each rule's
 * verdict on an event file.
 */
// Each test runs the CLI five or more times, a second or more each on a busy machine.
describe('rules in the topology file, and sluice schemas test (real broker and registry)', { timeout: 180_000 }, () => {
  const topic = uniqueName('contracts.placed');
  const subject = `${topic}-value`;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-contracts-it-'));
  const file = join(dir, 'contracts.topology.yaml');
  let registry: RunningRegistry;
  let env: NodeJS.ProcessEnv;

  const writeTopology = (minimum: number): void => {
    writeFileSync(
      file,
      `topics:
  - name: ${topic}
    valueSchema:
      file: OrderPlaced.avsc
      metadata:
        tags:
          "**.customerId": [PII]
      ruleSet: orders.rules.yaml
`,
    );
    writeFileSync(
      join(dir, 'orders.rules.yaml'),
      `domainRules:
  - name: positive-amount
    kind: CONDITION
    mode: WRITE
    type: CEL
    expr: message.amount > ${minimum}.0
  - name: mask-customer
    kind: TRANSFORM
    mode: WRITE
    type: CEL_FIELD
    tags: [PII]
    expr: "typeName == 'STRING' ; 'redacted'"
`,
    );
  };
  const sluice = (...args: string[]): Promise<CliResult> => runCli(args, env);
  const plan = async (): Promise<Plan> => {
    const result = await sluice('topology', 'plan', '--json');
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as Plan;
  };
  const eventFile = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const order = (amount: number) =>
    JSON.stringify({ orderId: 'o-1', customerId: 'c-42', items: [{ sku: 'SKU-1', quantity: 1, unitPrice: 5 }], amount, currency: 'EUR', placedAt: 1767225600000 }, null, 2);

  beforeAll(async () => {
    const config = testConfig();
    registry = await startRegistry({ config, logger: testLogger(config, 'registry'), port: 0, topic: config.registryTopic });
    copyFileSync(join(PROJECT_ROOT, 'schemas', 'OrderPlaced.avsc'), join(dir, 'OrderPlaced.avsc'));
    writeTopology(0);
    env = { KAFKA_BROKERS: brokers().join(','), SLUICE_REGISTRY_URL: registry.url, SLUICE_TOPOLOGY: file, SLUICE_TOPOLOGY_STATE_TOPIC: uniqueName('_sluice_topology_test') };
  });

  afterAll(async () => {
    await registry?.close();
    await withKafkaAdmin((admin) => admin.deleteTopics([topic])).catch(() => undefined);
  });

  it('plan and apply register the schema with its rules; a changed rule is a new version', async () => {
    expect((await plan()).actions).toContainEqual(
      expect.objectContaining({ type: 'register-schema', subject, contract: expect.objectContaining({ metadata: { tags: { '**.customerId': ['PII'] } } }) }),
    );
    const applied = await sluice('topology', 'apply', '--auto-approve');
    expect(applied.code, applied.stderr).toBe(0);
    const latest = (await (await fetch(`${registry.url}/subjects/${subject}/versions/latest`)).json()) as Record<string, unknown>;
    expect(latest).toMatchObject({ version: 1, metadata: { tags: { '**.customerId': ['PII'] } }, ruleSet: { domainRules: [{ name: 'positive-amount' }, { name: 'mask-customer' }] } });
    expect((await plan()).actions).toEqual([]);

    writeTopology(10);
    const text = await sluice('topology', 'plan');
    expect(text.stdout).toMatch(new RegExp(`register \\S*OrderPlaced\\.avsc as a new version of ${subject.replace(/\./g, '\\.')} with 2 rules\\n {6}~ domain rule positive-amount\\n`));
    expect((await sluice('topology', 'apply', '--auto-approve')).code).toBe(0);
    expect(await (await fetch(`${registry.url}/subjects/${subject}/versions/latest`)).json()).toMatchObject({
      version: 2,
      ruleSet: { domainRules: [{ name: 'positive-amount', expr: 'message.amount > 10.0' }, { name: 'mask-customer' }] },
    });
  });

  it("sluice schemas test prints each rule's verdict and exits 1 when the event would not go through", async () => {
    const passing = await sluice('schemas', 'test', subject, '--event', eventFile('ok.json', order(50)));
    expect(passing.code, passing.stderr).toBe(0);
    expect(passing.stdout).toMatch(/pass {2}positive-amount \(CEL CONDITION\)\n {2}xform mask-customer \(CEL_FIELD TRANSFORM\)/);
    expect(passing.stdout).toContain('"customerId": "redacted"');

    const failing = await sluice('schemas', 'test', subject, '--event', eventFile('low.json', order(5)), '--json');
    expect(failing.code).toBe(1);
    expect(JSON.parse(failing.stdout)).toMatchObject({ version: 2, outcomes: [{ rule: 'positive-amount', result: 'failed', action: 'ERROR' }], failure: { rule: 'positive-amount' } });

    const older = await sluice('schemas', 'test', subject, '--event', eventFile('low.json', order(5)), '--version', '1');
    expect(older.code, older.stderr).toBe(0);

    const invalid = await sluice('schemas', 'test', subject, '--event', eventFile('bad.json', '{"orderId": "o-1"}'));
    expect(invalid.code).toBe(1);
    expect(invalid.stdout).toMatch(/FAIL {2}schema: customerId/);

    const broken = await sluice('schemas', 'test', subject, '--event', eventFile('broken.json', '{\n  "orderId": "o-1",\n}\n'));
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/broken\.json: not JSON: .*line 3/);
  });

  it('plan names a worker pinned by input.useLatestWithMetadata to properties no version has, and a bad pin at its line', async () => {
    const pinnedFile = join(dir, 'pinned.topology.yaml');
    writeFileSync(join(dir, 'handler.ts'), 'export default () => undefined;\n');
    const pinnedTopology = (pin: string) =>
      writeFileSync(
        pinnedFile,
        `topics:
  - name: ${topic}
    valueSchema: OrderPlaced.avsc
workers:
  - name: reads-major-7
    input:
      topic: ${topic}
      useLatestWithMetadata: ${pin}
    output: ${topic}
    deadLetter: ${topic}
    handler: handler.ts
`,
      );
    const pinned = (...args: string[]) => runCli(['topology', 'plan', ...args], { ...env, SLUICE_TOPOLOGY: pinnedFile });

    pinnedTopology('{ major_version: 7 }');
    const missing = await pinned('--json');
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stdout).errors).toEqual([
      {
        type: 'pinned-version-missing',
        topic,
        message: expect.stringMatching(
          new RegExp(`pinned\\.topology\\.yaml:8: worker reads-major-7 reads with input\\.useLatestWithMetadata major_version=7, but no version of ${subject.replace(/\./g, '\\.')} has`),
        ),
      },
    ]);

    pinnedTopology('{}');
    const empty = await pinned();
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/pinned\.topology\.yaml:8:\d+: workers\[0\]\.input\.useLatestWithMetadata: expected a mapping with at least 1 key/);
  });
});
