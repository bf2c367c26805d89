import { mkdtempSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../core/config.ts';
import { TopologyError } from '../../core/errors.ts';
import { loadTopology } from '../../topology/load.ts';

const dir = mkdtempSync(join(tmpdir(), 'sluice-topology-'));
copyFileSync(join(PROJECT_ROOT, 'schemas/OrderPlaced.avsc'), join(dir, 'OrderPlaced.avsc'));
writeFileSync(join(dir, 'handler.ts'), 'export default () => undefined;\n');

const valid = `topics:
  - name: in
    partitions: 3
    valueSchema: OrderPlaced.avsc
    configs:
      retention.ms: 1000
  - name: out
    valueSchema: OrderPlaced.avsc
  - name: dlq
routes:
  - method: POST
    path: /v1/orders
    topic: in
    key: orderId
workers:
  - name: w
    input: in
    output: out
    deadLetter: dlq
    handler: handler.ts
`;

function load(text: string) {
  const file = join(dir, `t-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, text);
  return () => loadTopology(file);
}

function errorOf(fn: () => unknown): TopologyError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TopologyError);
    return error as TopologyError;
  }
  throw new Error('expected a TopologyError');
}

describe('topology loading', () => {
  it('loads the project topology: orders.placed route, score-orders worker', () => {
    const topology = loadTopology(join(PROJECT_ROOT, 'topology/sluice.topology.yaml'));
    expect(topology.routes).toEqual([{ method: 'POST', path: '/v1/orders', topic: 'orders.placed', key: 'orderId' }]);
    expect(topology.workers[0]).toMatchObject({ name: 'score-orders', input: 'orders.placed', output: 'orders.scored', deadLetter: 'orders.placed.dlq' });
    expect(topology.topics.find((t) => t.name === 'orders.placed')?.valueSchema?.subject).toBe('orders.placed-value');
  });

  it('fills defaults and stringifies configs', () => {
    const topology = load(valid)();
    expect(topology.topics[0]).toMatchObject({ name: 'in', partitions: 3, replicationFactor: 'auto', minInsyncReplicas: 'auto', configs: { 'retention.ms': '1000' } });
    expect(topology.topics[0]?.location).toMatch(/t-\w+\.yaml:2$/);
    expect(topology.topics[1]?.partitions).toBe(1);
    expect(topology.workers[0]).toMatchObject({ groupId: 'sluice.w', delivery: 'at-least-once', handler: join(dir, 'handler.ts') });
  });

  it.each([
    ['a missing schema file', valid.replace('valueSchema: OrderPlaced.avsc\n    configs', 'valueSchema: Missing.avsc\n    configs'), 4, 'topics[0].valueSchema', /schema file Missing\.avsc not found/],
    ['a route to an undeclared topic', valid.replace('topic: in', 'topic: nowhere'), 13, 'routes[0].topic', /topic "nowhere" is not declared/],
    ['a key field not in the schema', valid.replace('key: orderId', 'key: orderNumber'), 14, 'routes[0].key', /key field "orderNumber" is not a field of in-value/],
    ['a worker output that is not declared', valid.replace('output: out', 'output: gone'), 18, 'workers[0].output', /topic "gone" is not declared/],
    ['an invalid topic name', valid.replace('name: dlq', 'name: "bad topic!"'), 9, 'topics[2].name', /not a valid Kafka topic name/],
    ['an unknown key', valid.replace('partitions: 3', 'partitons: 3'), 3, 'topics[0].partitons', /unknown key "partitons"/],
    ['a bad partition count', valid.replace('partitions: 3', 'partitions: zero'), 3, 'topics[0].partitions', /whole number/],
    ['a missing handler', valid.replace('handler: handler.ts', 'handler: nope.ts'), 20, 'workers[0].handler', /handler module nope\.ts not found/],
  ])('refuses %s with the file, line and path', (_name, text, line, path, message) => {
    const error = errorOf(load(text));
    expect(error.path).toBe(path);
    expect(error.location.line).toBe(line);
    expect(error.message).toMatch(new RegExp(`t-\\w+\\.yaml:${line}:\\d+: ${path.replace(/[[\].]/g, '\\$&')}: `));
    expect(error.message).toMatch(message);
  });

  it('refuses YAML syntax errors with a line', () => {
    const error = errorOf(load('topics:\n  - name: a\n   bad: [\n'));
    expect(error.location.line).toBeGreaterThan(1);
    expect(error.message).toMatch(/YAML syntax/);
  });

  describe('replication', () => {
    const withReplication = (lines: string): string => valid.replace('    partitions: 3\n', `    partitions: 3\n${lines}`);

    it('keeps explicit factors and auto', () => {
      const topology = load(withReplication('    replicationFactor: 3\n    minInsyncReplicas: 2\n'))();
      expect(topology.topics[0]).toMatchObject({ replicationFactor: 3, minInsyncReplicas: 2 });
      expect(load(withReplication('    replicationFactor: auto\n'))().topics[0]).toMatchObject({ replicationFactor: 'auto', minInsyncReplicas: 'auto' });
    });

    it('refuses a word other than auto with the line', () => {
      const error = errorOf(load(withReplication('    replicationFactor: three\n')));
      expect(error.location.line).toBe(4);
      expect(error.message).toContain('topics[0].replicationFactor');
      expect(error.message).toContain('a whole number from 1 to 32 or auto');
    });

    it('refuses min.insync.replicas above the factor', () => {
      const error = errorOf(load(withReplication('    replicationFactor: 2\n    minInsyncReplicas: 3\n')));
      expect(error.location.line).toBe(5);
      expect(error.message).toContain('min.insync.replicas 3 exceeds the replication factor 2');
    });

    it('refuses minInsyncReplicas beside configs.min.insync.replicas', () => {
      const error = errorOf(
        load(valid.replace('      retention.ms: 1000\n', '      retention.ms: 1000\n      min.insync.replicas: 2\n').replace('    partitions: 3\n', '    partitions: 3\n    minInsyncReplicas: 2\n')),
      );
      expect(error.message).toContain('set either minInsyncReplicas or configs.min.insync.replicas');
    });

    it('leaves min.insync.replicas to configs when they name it', () => {
      const topology = load(valid.replace('      retention.ms: 1000\n', '      retention.ms: 1000\n      min.insync.replicas: 1\n'))();
      expect(topology.topics[0]?.minInsyncReplicas).toBeUndefined();
      expect(topology.topics[0]?.configs['min.insync.replicas']).toBe('1');
    });
  });
});

describe('value schemas of the three formats', () => {
  writeFileSync(join(dir, 'Payment.json'), JSON.stringify({ type: 'object', properties: { paymentId: { type: 'string' } }, required: ['paymentId'] }));
  writeFileSync(join(dir, 'payment.proto'), 'syntax = "proto3";\npackage p;\nmessage Payment { string paymentId = 1; }\n');
  writeFileSync(join(dir, 'broken.proto'), 'syntax = "proto3";\nmessage Payment { string paymentId = ; }\n');
  writeFileSync(join(dir, 'empty.proto'), 'syntax = "proto3";\npackage p;\n');
  writeFileSync(join(dir, 'broken.json'), '{"type": "object", "properties": {"a": {"type": 12}}}');
  writeFileSync(join(dir, 'Payment.xsd'), '<schema/>');
  const topology = (schema: string, key = 'paymentId') => `topics:
  - name: payments
    valueSchema: ${schema}
routes:
  - { method: POST, path: /v1/payments, topic: payments, key: ${key} }
`;

  it.each([
    ['Payment.json', 'JSON'],
    ['payment.proto', 'PROTOBUF'],
    ['OrderPlaced.avsc', 'AVRO'],
  ])('%s is a %s schema, registered as is', (file, type) => {
    const loaded = load(topology(file, file === 'OrderPlaced.avsc' ? 'orderId' : 'paymentId'))();
    expect(loaded.topics[0]?.valueSchema).toMatchObject({ schemaType: type, subject: 'payments-value' });
  });

  it('a route key must be a property of a JSON Schema or a field of the first Protobuf message', () => {
    expect(errorOf(load(topology('Payment.json', 'id'))).message).toMatch(/key field "id" is not a field of payments-value \(fields: paymentId\)/);
    expect(errorOf(load(topology('payment.proto', 'id'))).message).toMatch(/key field "id" is not a field of payments-value \(fields: paymentId\)/);
  });

  it.each([
    ['broken.proto', /:3:18: topics\[0\]\.valueSchema: schema file broken\.proto is not a valid Protobuf schema: illegal/],
    ['empty.proto', /schema file empty\.proto is not a valid Protobuf schema: it declares no message/],
    ['broken.json', /schema file broken\.json is not a valid JSON Schema: .*type/],
    ['Payment.xsd', /topics\[0\]\.valueSchema: .*(avsc|proto)/],
  ])('%s is refused naming the file, line and problem', (file, message) => {
    expect(errorOf(load(topology(file))).message).toMatch(message);
  });
});

describe('data contracts in the topology file', () => {
  const withContract = (entry: string) => valid.replace('    valueSchema: OrderPlaced.avsc\n    configs', `    valueSchema:\n${entry}\n    configs`);
  const inline = `      file: OrderPlaced.avsc
      metadata:
        tags:
          "**.customerId": [PII]
        properties:
          owner: orders-team
      ruleSet:
        domainRules:
          - name: positive-amount
            kind: CONDITION
            mode: WRITE
            type: CEL
            expr: message.amount > 0`;

  it('keeps the declared metadata and rules with the schema, as written', () => {
    const topology = load(withContract(inline))();
    expect(topology.topics[0]?.valueSchema).toMatchObject({
      subject: 'in-value',
      file: join(dir, 'OrderPlaced.avsc'),
      contract: {
        metadata: { tags: { '**.customerId': ['PII'] }, properties: { owner: 'orders-team' } },
        ruleSet: { domainRules: [{ name: 'positive-amount', kind: 'CONDITION', mode: 'WRITE', type: 'CEL', expr: 'message.amount > 0' }] },
      },
    });
    expect(topology.topics[1]?.valueSchema?.contract).toBeUndefined();
  });

  it('reads a ruleSet from a file of its own next to the topology', () => {
    writeFileSync(join(dir, 'orders.rules.yaml'), "domainRules:\n  - name: known-currency\n    kind: CONDITION\n    mode: WRITE\n    type: CEL\n    expr: \"message.currency in ['EUR', 'USD']\"\n");
    const topology = load(withContract('      file: OrderPlaced.avsc\n      ruleSet: orders.rules.yaml'))();
    expect(topology.topics[0]?.valueSchema?.contract?.ruleSet?.domainRules?.[0]).toMatchObject({ name: 'known-currency', expr: "message.currency in ['EUR', 'USD']" });
  });

  it('refuses a rule that does not compile at its line, naming the rule', () => {
    const error = errorOf(load(withContract(inline.replace('expr: message.amount > 0', 'expr: message.amount >'))));
    expect(error.path).toBe('topics[0].valueSchema.ruleSet.domainRules[0].expr');
    expect(error.location.line).toBe(17);
    expect(error.message).toMatch(/rule "positive-amount"/);
  });

  it('refuses a bad rule in a rules file with that file and line', () => {
    writeFileSync(join(dir, 'bad.rules.yaml'), 'domainRules:\n  - name: r\n    kind: CONDITION\n    mode: SOMETIMES\n    type: CEL\n    expr: "true"\n');
    const error = errorOf(load(withContract('      file: OrderPlaced.avsc\n      ruleSet: bad.rules.yaml')));
    expect(error.message).toMatch(/bad\.rules\.yaml:4:\d+: domainRules\[0\]\.mode: rule "r"/);
  });

  it('refuses an unknown key in the mapping and a missing rules file', () => {
    expect(errorOf(load(withContract('      file: OrderPlaced.avsc\n      rules: x.yaml'))).message).toMatch(/unknown key "rules"/);
    expect(errorOf(load(withContract('      file: OrderPlaced.avsc\n      ruleSet: none.yaml'))).message).toMatch(/rules file none\.yaml not found/);
  });
});

describe('a worker pinned to a version by metadata (input.useLatestWithMetadata)', () => {
  const withInput = (entry: string) => valid.replace('    input: in\n', `    input:\n${entry}\n`);

  it('reads the topic and the metadata properties (a YAML number taken as its text); a plain input pins nothing', () => {
    const topology = load(withInput('      topic: in\n      useLatestWithMetadata:\n        major_version: 1\n        owner: orders-team'))();
    expect(topology.workers[0]).toMatchObject({ input: 'in', useLatestWithMetadata: { major_version: '1', owner: 'orders-team' } });
    expect(load(withInput('      topic: in'))().workers[0]).not.toHaveProperty('useLatestWithMetadata');
    expect(loadTopology(join(PROJECT_ROOT, 'topology/sluice.topology.yaml')).workers[0]).not.toHaveProperty('useLatestWithMetadata');
  });

  it('refuses an unknown key, an empty mapping, a non-scalar value and an undeclared topic, at their lines', () => {
    const unknown = errorOf(load(withInput('      topic: in\n      useLatestVersion: true')));
    expect(unknown.message).toMatch(/workers\[0\]\.input\.useLatestVersion: unknown key "useLatestVersion" \(expected one of: topic, useLatestWithMetadata\)/);
    expect(unknown.location.line).toBe(19);

    const empty = errorOf(load(withInput('      topic: in\n      useLatestWithMetadata: {}')));
    expect(empty.path).toBe('workers[0].input.useLatestWithMetadata');
    expect(empty.location.line).toBe(19);
    expect(empty.message).toMatch(/at least 1 key/);

    const nested = errorOf(load(withInput('      topic: in\n      useLatestWithMetadata:\n        major_version: [1]')));
    expect(nested.path).toBe('workers[0].input.useLatestWithMetadata.major_version');
    expect(nested.location.line).toBe(20);

    const undeclared = errorOf(load(withInput('      topic: nowhere\n      useLatestWithMetadata: { major_version: "1" }')));
    expect(undeclared.path).toBe('workers[0].input.topic');
    expect(undeclared.message).toMatch(/topic "nowhere" is not declared/);

    expect(errorOf(load(withInput('      useLatestWithMetadata: { major_version: "1" }'))).message).toMatch(/missing required key "topic"/);
  });
});
