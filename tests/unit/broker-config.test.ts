import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalKafkaError } from '../../core/errors.ts';
import { loggingConfig, mavenProfile, serverProperties, type NodeSpec } from '../../broker/properties.ts';
import { fetchMetadata } from '../../broker/probe.ts';
import { minInsyncReplicas, replicationFactor, replicationProblem } from '../../broker/replication.ts';
import { addScramArgs, recordSaslUser, saslUser } from '../../broker/sasl.ts';

function props(text: string): Map<string, string> {
  return new Map(
    text
      .split('\n')
      .filter((line) => line && !line.startsWith('#'))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
}

const single: NodeSpec = {
  version: '4.4.0',
  nodeId: 1,
  host: '127.0.0.1',
  port: 9092,
  controllerPort: 9093,
  dataDir: '/data/kafka',
  voters: [{ id: 1, host: '127.0.0.1', controllerPort: 9093 }],
  replication: { factor: 1, minInsync: 1 },
};

describe('replication defaults', () => {
  it('auto is min(3, brokers) replicas and RF − 1 (at least 1) in sync', () => {
    expect([1, 2, 3, 5].map((brokers) => replicationFactor(brokers))).toEqual([1, 2, 3, 3]);
    expect([1, 2, 3, 5].map((factor) => minInsyncReplicas(factor))).toEqual([1, 1, 2, 4]);
    expect(replicationFactor(3, 'auto')).toBe(3);
    expect(minInsyncReplicas(3, 'auto')).toBe(2);
  });

  it('keeps explicit settings and rejects impossible ones', () => {
    expect(replicationFactor(1, 3)).toBe(3);
    expect(replicationProblem(1, 3)).toMatch(/needs at least 3 brokers; the cluster has 1/);
    expect(replicationProblem(3, 3)).toBeUndefined();
    expect(minInsyncReplicas(3, 1)).toBe(1);
    expect(() => minInsyncReplicas(3, 4)).toThrowError(/from 1 to the replication factor 3/);
    expect(() => replicationFactor(0)).toThrowError(RangeError);
    expect(() => replicationFactor(3, 0)).toThrowError(RangeError);
  });
});

describe('server.properties of a local node', () => {
  it('one node: PLAINTEXT and CONTROLLER only, internal topics with one replica', () => {
    const p = props(serverProperties(single));
    expect(p.get('process.roles')).toBe('broker,controller');
    expect(p.get('controller.quorum.voters')).toBe('1@127.0.0.1:9093');
    expect(p.get('listeners')).toBe('PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093');
    expect(p.get('offsets.topic.replication.factor')).toBe('1');
    expect(p.get('transaction.state.log.min.isr')).toBe('1');
    expect(p.get('share.coordinator.state.topic.replication.factor')).toBe('1');
    expect(p.has('sasl.enabled.mechanisms')).toBe(false);
  });

  it('a node of three: every voter, replicated internal topics, broker-wide min.insync left at 1', () => {
    const voters = [1, 2, 3].map((id) => ({ id, host: '127.0.0.1', controllerPort: 9091 + 2 * id }));
    const p = props(serverProperties({ ...single, nodeId: 2, port: 9094, controllerPort: 9095, voters, replication: { factor: 3, minInsync: 2 } }));
    expect(p.get('node.id')).toBe('2');
    expect(p.get('controller.quorum.voters')).toBe('1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097');
    expect(p.get('default.replication.factor')).toBe('3');
    expect(p.get('offsets.topic.replication.factor')).toBe('3');
    expect(p.get('transaction.state.log.replication.factor')).toBe('3');
    expect(p.get('transaction.state.log.min.isr')).toBe('2');
    expect(p.get('min.insync.replicas')).toBe('1');
  });

  it('a SASL_SSL listener beside PLAINTEXT, brokers and controllers staying on PLAINTEXT', () => {
    const p = props(serverProperties({ ...single, saslSsl: { port: 9192, keystoreFile: '/data/kafka/tls/broker.pem', plainUsers: { sluice: 's3cret' } } }));
    expect(p.get('listeners')).toBe('PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093,SASL_SSL://127.0.0.1:9192');
    expect(p.get('advertised.listeners')).toBe('PLAINTEXT://127.0.0.1:9092,SASL_SSL://127.0.0.1:9192');
    expect(p.get('listener.security.protocol.map')).toContain('SASL_SSL:SASL_SSL');
    expect(p.get('inter.broker.listener.name')).toBe('PLAINTEXT');
    expect(p.get('sasl.enabled.mechanisms')).toBe('PLAIN,SCRAM-SHA-256,SCRAM-SHA-512');
    expect(p.get('listener.name.sasl_ssl.ssl.keystore.type')).toBe('PEM');
    expect(p.get('listener.name.sasl_ssl.plain.sasl.jaas.config')).toBe('org.apache.kafka.common.security.plain.PlainLoginModule required user_sluice="s3cret";');
    expect(p.get('listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config')).toMatch(/ScramLoginModule required;$/);
  });

  it('Kafka 3.9 gets no Kafka 4-only settings', () => {
    expect(props(serverProperties({ ...single, version: '3.9.1' })).has('share.coordinator.state.topic.replication.factor')).toBe(false);
  });
});

describe('logging configuration', () => {
  it('log4j2 for Kafka 4 (passed as -Dlog4j2.configurationFile), log4j 1 for 3.x', () => {
    const four = loggingConfig('4.4.0', '/data/kafka');
    expect(four.file).toBe('/data/kafka/log4j2.properties');
    expect(four.jvmFlag).toBe('-Dlog4j2.configurationFile=/data/kafka/log4j2.properties');
    expect(four.content).toContain('appender.file.fileName = /data/kafka/server.log');
    expect(four.content).toContain('rootLogger.level = WARN');
    expect(mavenProfile('4.4.0')).toBe('kafka4');
    const three = loggingConfig('3.9.1', '/data/kafka');
    expect(three.jvmFlag).toBe('-Dlog4j.configuration=file:/data/kafka/log4j.properties');
    expect(three.content).toContain('log4j.appender.file.File=/data/kafka/server.log');
    expect(mavenProfile('3.9.1')).toBe('kafka3');
  });
});

describe('the SASL user of a local broker', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-sasl-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is generated once, kept, and a contradicting password is refused with what to do', () => {
    const generated = saslUser(dir, 'sluice', undefined);
    expect(generated.password).toMatch(/^[A-Za-z0-9_-]{24}$/);
    recordSaslUser(dir, generated);
    expect(saslUser(dir, 'sluice', undefined)).toEqual(generated);
    expect(saslUser(dir, 'sluice', generated.password)).toEqual(generated);
    expect(() => saslUser(dir, 'sluice', 'another')).toThrowError(LocalKafkaError);
    expect(() => saslUser(dir, 'other', undefined)).toThrowError(/formatted with another SASL user or password/);
  });

  it('refuses characters that would break the JAAS or --add-scram syntax', () => {
    expect(() => saslUser(join(dir, 'fresh'), 'sluice', 'has"quote')).toThrowError(/may hold only/);
    expect(() => saslUser(join(dir, 'fresh'), 'a,b', undefined)).toThrowError(/username may hold only/);
    expect(addScramArgs({ username: 'u', password: 'p' })).toEqual(['--add-scram', 'SCRAM-SHA-256=[name=u,password=p]', '--add-scram', 'SCRAM-SHA-512=[name=u,password=p]']);
  });
});

describe('the Metadata probe', () => {
  it('sends a Metadata v4 request and decodes brokers, partitions and ISRs', async () => {
    const str = (s: string): Buffer => Buffer.concat([Buffer.from([0, s.length]), Buffer.from(s)]);
    const i32 = (...ns: number[]): Buffer => Buffer.concat(ns.map((n) => Buffer.from([(n >> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255])));
    const i16 = (n: number): Buffer => Buffer.from([(n >> 8) & 255, n & 255]);
    let request: Buffer | undefined;
    const server = createServer((socket) =>
      socket.once('data', (data) => {
        request = data;
        const body = Buffer.concat([
          i32(data.readInt32BE(8), 0), // correlation id, throttle
          i32(2),
          i32(1),
          str('h1'),
          i32(9092),
          i16(-1),
          i32(2),
          str('h2'),
          i32(9094),
          i16(-1),
          str('cluster'),
          i32(1), // controller
          i32(1),
          i16(0),
          str('t'),
          Buffer.from([0]),
          i32(1),
          i16(0),
          i32(0, 2), // partition 0, leader 2
          i32(2, 1, 2), // replicas
          i32(1, 2), // isr
        ]);
        socket.end(Buffer.concat([i32(body.length), body]));
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const metadata = await fetchMetadata(`127.0.0.1:${(server.address() as AddressInfo).port}`, ['t']);
      expect(request?.readInt16BE(4)).toBe(3); // Metadata
      expect(request?.readInt16BE(6)).toBe(4); // v4
      expect(metadata).toEqual({
        brokers: [
          { id: 1, host: 'h1', port: 9092 },
          { id: 2, host: 'h2', port: 9094 },
        ],
        clusterId: 'cluster',
        topics: [{ name: 't', errorCode: 0, partitions: [{ errorCode: 0, partition: 0, leader: 2, replicas: [1, 2], isr: [2] }] }],
      });
    } finally {
      server.close();
    }
  });

  it('fails when nothing listens', async () => {
    await expect(fetchMetadata('127.0.0.1:1', [], 500)).rejects.toThrowError();
  });
});
