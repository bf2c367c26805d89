import { join } from 'node:path';

/**
 * The files a local Kafka node is started with, as pure functions of its spec:
 * server.properties and the logging configuration (log4j2 for Kafka 4, log4j 1
 * for Kafka 3). Written on every start, so a changed spec takes effect.
 */

export interface Voter {
  id: number;
  host: string;
  controllerPort: number;
}

export interface SaslSslListener {
  port: number;
  /** PEM file with the broker's private key (PKCS#8) and certificate. */
  keystoreFile: string;
  /** SASL/PLAIN users (name → password). SCRAM users live in the cluster metadata, created at format time. */
  plainUsers: Record<string, string>;
}

export interface NodeSpec {
  version: string;
  nodeId: number;
  host: string;
  port: number;
  controllerPort: number;
  dataDir: string;
  /** Every controller of the quorum (this node included): one for a single node, three for a cluster. */
  voters: Voter[];
  /** Replicas of internal topics and of topics created without a factor, and the in-sync count transaction state needs. */
  replication: { factor: number; minInsync: number };
  saslSsl?: SaslSslListener;
}

/** The SASL mechanisms the SASL_SSL listener accepts. */
export const SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const;
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

export function kafkaMajor(version: string): number {
  const major = Number(/^(\d+)\./.exec(version)?.[1]);
  if (!Number.isInteger(major)) throw new RangeError(`not a Kafka version: "${version}"`);
  return major;
}

/** The directory Kafka keeps its log segments and meta.properties in. */
export function logDir(dataDir: string): string {
  return join(dataDir, 'logs');
}

function listeners(spec: NodeSpec): string[] {
  const { host, port, controllerPort, saslSsl } = spec;
  const listen = [`PLAINTEXT://${host}:${port}`, `CONTROLLER://${host}:${controllerPort}`];
  const advertise = [`PLAINTEXT://${host}:${port}`];
  const protocols = ['PLAINTEXT:PLAINTEXT', 'CONTROLLER:PLAINTEXT'];
  if (saslSsl) {
    listen.push(`SASL_SSL://${host}:${saslSsl.port}`);
    advertise.push(`SASL_SSL://${host}:${saslSsl.port}`);
    protocols.push('SASL_SSL:SASL_SSL');
  }
  return [
    `listeners=${listen.join(',')}`,
    `advertised.listeners=${advertise.join(',')}`,
    'controller.listener.names=CONTROLLER',
    // Brokers and controllers talk PLAINTEXT among themselves: only clients are asked for credentials.
    'inter.broker.listener.name=PLAINTEXT',
    `listener.security.protocol.map=${protocols.join(',')}`,
  ];
}

function saslSslProperties(listener: SaslSslListener): string[] {
  const prefix = 'listener.name.sasl_ssl';
  const plainUsers = Object.entries(listener.plainUsers)
    .map(([name, password]) => `user_${name}="${password}"`)
    .join(' ');
  return [
    `sasl.enabled.mechanisms=${SASL_MECHANISMS.join(',')}`,
    `${prefix}.ssl.keystore.type=PEM`,
    `${prefix}.ssl.keystore.location=${listener.keystoreFile}`,
    `${prefix}.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required ${plainUsers};`,
    `${prefix}.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;`,
    `${prefix}.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;`,
  ];
}

/**
 * server.properties of one combined broker+controller node. Broker-wide
 * min.insync.replicas stays 1 whatever the cluster size: it is only a default
 * for topics that do not set their own, and a topic created with one replica
 * (today's topology default) would refuse every acks=all write under 2. Topics
 * that want 2 say so (see replication.ts); transaction state asks for it here.
 */
export function serverProperties(spec: NodeSpec): string {
  const { factor, minInsync } = spec.replication;
  return [
    '# Written by Sluice (broker/properties.ts) on every start; edit the code, not this file.',
    'process.roles=broker,controller',
    `node.id=${spec.nodeId}`,
    `controller.quorum.voters=${spec.voters.map((v) => `${v.id}@${v.host}:${v.controllerPort}`).join(',')}`,
    ...listeners(spec),
    ...(spec.saslSsl ? saslSslProperties(spec.saslSsl) : []),
    `log.dirs=${logDir(spec.dataDir)}`,
    'num.partitions=1',
    `default.replication.factor=${factor}`,
    'min.insync.replicas=1',
    `offsets.topic.replication.factor=${factor}`,
    'offsets.topic.num.partitions=10',
    `transaction.state.log.replication.factor=${factor}`,
    `transaction.state.log.min.isr=${minInsync}`,
    'transaction.state.log.num.partitions=10',
    // Kafka 4's share groups (KIP-932) keep state in a topic that defaults to 3 replicas.
    ...(kafkaMajor(spec.version) >= 4 ? [`share.coordinator.state.topic.replication.factor=${factor}`, `share.coordinator.state.topic.min.isr=${minInsync}`] : []),
    'group.initial.rebalance.delay.ms=0',
    'auto.create.topics.enable=false',
    'num.network.threads=2',
    'num.io.threads=4',
    'num.recovery.threads.per.data.dir=1',
    'log.cleaner.threads=1',
    'log.cleaner.backoff.ms=5000',
    // Compacted topics (the registry's _schemas) are cleaned soon enough to see it work.
    'log.cleaner.min.compaction.lag.ms=0',
    'transactional.id.expiration.ms=604800000',
    'delete.topic.enable=true',
    '',
  ].join('\n');
}

export interface LoggingConfig {
  file: string;
  content: string;
  /** The JVM flag that points Kafka's logging at `file`. */
  jvmFlag: string;
}

/** Loggers kept at INFO so a start, its Kafka version and a stop can be followed in server.log; everything else at WARN. */
const INFO_LOGGERS = ['kafka.server.BrokerServer', 'kafka.server.ControllerServer', 'kafka.Kafka$', 'org.apache.kafka.common.utils.AppInfoParser'];

function log4j2(dataDir: string): string {
  const log = join(dataDir, 'server.log');
  return [
    'status = warn',
    'appender.file.type = RollingFile',
    'appender.file.name = file',
    `appender.file.fileName = ${log}`,
    `appender.file.filePattern = ${log}.%i`,
    'appender.file.layout.type = PatternLayout',
    'appender.file.layout.pattern = [%d] %p %m (%c)%n',
    'appender.file.policies.type = Policies',
    'appender.file.policies.size.type = SizeBasedTriggeringPolicy',
    'appender.file.policies.size.size = 20MB',
    'appender.file.strategy.type = DefaultRolloverStrategy',
    'appender.file.strategy.max = 2',
    'rootLogger.level = WARN',
    'rootLogger.appenderRef.file.ref = file',
    ...INFO_LOGGERS.flatMap((name, i) => [`logger.info${i}.name = ${name}`, `logger.info${i}.level = INFO`]),
    '',
  ].join('\n');
}

function log4j1(dataDir: string): string {
  return [
    'log4j.rootLogger=WARN, file',
    'log4j.appender.file=org.apache.log4j.RollingFileAppender',
    `log4j.appender.file.File=${join(dataDir, 'server.log')}`,
    'log4j.appender.file.MaxFileSize=20MB',
    'log4j.appender.file.MaxBackupIndex=2',
    'log4j.appender.file.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n',
    ...INFO_LOGGERS.map((name) => `log4j.logger.${name}=INFO`),
    '',
  ].join('\n');
}

/** Kafka 4 dropped log4j 1: it reads a log4j2 file named by -Dlog4j2.configurationFile, as its scripts pass it. */
export function loggingConfig(version: string, dataDir: string): LoggingConfig {
  if (kafkaMajor(version) >= 4) {
    const file = join(dataDir, 'log4j2.properties');
    return { file, content: log4j2(dataDir), jvmFlag: `-Dlog4j2.configurationFile=${file}` };
  }
  const file = join(dataDir, 'log4j.properties');
  return { file, content: log4j1(dataDir), jvmFlag: `-Dlog4j.configuration=file:${file}` };
}

/** The Maven profile that adds the logging binding of this Kafka line (see broker/pom.xml). */
export function mavenProfile(version: string): string {
  return kafkaMajor(version) >= 4 ? 'kafka4' : 'kafka3';
}
