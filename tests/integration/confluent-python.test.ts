import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, type SluiceConfig } from '../../core/config.ts';
import { RegistryClient } from '../../core/registry-client.ts';
import { startIngress, type Ingress } from '../../producers/server.ts';
import { startRegistry, type RunningRegistry } from '../../registry/server.ts';
import { formatsTopology } from '../support/formats-topology.ts';
import { createTopics, testConfig, testLogger, uniqueName, withKafkaAdmin } from '../support/platform.ts';
import { tailToEnd } from '../support/tail.ts';

/**
 * Confluent's Python serializers (Debian's python3-confluent-kafka 1.7, the version a Debian user
 * has) against Sluice: they register JSON Schema and Protobuf (the latter as a base64
 * FileDescriptorProto, as every Confluent client does) and write records that `sluice tail`
 * decodes; their deserializers read what Sluice's ingress wrote. scripts/ensure-test-tools.ts
 * installs the packages where it can.
 */

const PYTHON = '/usr/bin/python3';
const SCRIPT = `${PROJECT_ROOT}/tests/support/confluent_interop.py`;
const hasConfluentPython = spawnSync(PYTHON, ['-c', 'import confluent_kafka.schema_registry, google.protobuf, jsonschema'], { stdio: 'ignore' }).status === 0;
const run = promisify(execFile);

let config: SluiceConfig;
let registry: RunningRegistry;
let ingress: Ingress;
const { topology, renamed } = formatsTopology('py');
const pyJson = uniqueName('py-json');
const pyProto = uniqueName('py-proto');

const python = async (...args: string[]): Promise<string> => (await run(PYTHON, [SCRIPT, ...args], { cwd: PROJECT_ROOT, timeout: 90_000 })).stdout;
const lines = (text: string): Record<string, unknown>[] =>
  text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe.skipIf(!hasConfluentPython)('confluent-kafka (Python) against Sluice', () => {
  beforeAll(async () => {
    config = testConfig({ lingerMs: '2' });
    const logger = testLogger(config, 'confluent-python-test');
    registry = await startRegistry({ config, logger, port: 0, topic: config.registryTopic });
    await createTopics([...topology.topics.map((t) => ({ topic: t.name, numPartitions: 1 })), { topic: pyJson, numPartitions: 1 }, { topic: pyProto, numPartitions: 1 }]);
    ingress = await startIngress({ config, logger, topology, registry: new RegistryClient(registry.url), port: 0 });
  }, 120_000);

  afterAll(async () => {
    await ingress?.close();
    await registry?.close();
    await withKafkaAdmin((admin) => admin.deleteTopics([...topology.topics.map((t) => t.name), pyJson, pyProto, config.registryTopic])).catch(() => undefined);
  });

  it('its JSON Schema and Protobuf serializers register and write; sluice tail decodes every record', async () => {
    await python('produce', config.kafkaBrokers!.join(','), registry.url, pyJson, pyProto);
    const subject = await (await fetch(`${registry.url}/subjects/${pyProto}-value/versions/latest`)).json();
    expect(subject).toMatchObject({ schemaType: 'PROTOBUF', version: 1 });

    const env = { KAFKA_BROKERS: config.kafkaBrokers!.join(','), SLUICE_REGISTRY_URL: registry.url, SLUICE_LOG_LEVEL: 'warn' };
    for (const [topic, prefix, currency, unit] of [
      [pyJson, 'py-json', 'USD', 1000],
      [pyProto, 'py-proto', 'GBP', 2000],
    ] as const) {
      const { code, stdout, stderr } = await tailToEnd([topic, '--from-beginning', '--max', '2', '--format', 'ndjson'], env, 60_000);
      expect(code, stderr).toBe(0);
      expect(lines(stdout).map((l) => l.value)).toEqual([1, 2].map((i) => ({ paymentId: `${prefix}-${i}`, amountCents: unit * i, currency, note: 'from python' })));
    }
  });

  it("its deserializers read what Sluice's ingress wrote", async () => {
    const event = (format: string) => ({ paymentId: `sluice-${format}`, amountCents: 4200, currency: 'EUR', note: 'from sluice' });
    for (const format of ['json', 'proto']) {
      const answer = await fetch(`${ingress.url}/v1/payments/${format}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(event(format)) });
      expect(answer.status).toBe(200);
      const read = await python('consume', config.kafkaBrokers!.join(','), registry.url, renamed(`payments.${format}`), format, '1');
      expect(lines(read)).toEqual([event(format)]);
    }
  });
});
