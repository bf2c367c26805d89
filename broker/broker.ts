import { join } from 'node:path';
import type { SluiceConfig } from '../core/config.ts';
import { LocalKafkaError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { livePid, stopDaemon } from '../core/daemon.ts';
import { ensureKafkaJars } from './jars.ts';
import { KafkaNode, newClusterId } from './node.ts';
import { registeredBrokers } from './probe.ts';
import { SASL_MECHANISMS, type SaslMechanism } from './properties.ts';
import { replicationFactor, minInsyncReplicas } from './replication.ts';
import { recordedSaslUser, saslUser, type SaslUser } from './sasl.ts';
import { ensureBrokerTls } from './tls.ts';

export { ensureKafkaJars } from './jars.ts';

/**
 * The embedded broker: Apache Kafka in KRaft mode (one node that is both broker
 * and controller), resolved from Maven Central with `mvn`, formatted once and
 * started as a plain `java` process. Tuned for a 2-core box. A local cluster of
 * several such nodes is in cluster.ts.
 */

export interface SaslSslOptions {
  port: number;
  username: string;
  /** Unset: generated when the storage is formatted and kept in the data dir. */
  password?: string;
}

export interface LocalKafkaOptions {
  version: string;
  host: string;
  port: number;
  controllerPort: number;
  heap: string;
  /** Where resolved jars are cached, shared by every data dir. */
  cacheDir: string;
  /** This broker's own folder: its logs, properties, pid file and data. */
  dataDir: string;
  /** A SASL_SSL listener beside the PLAINTEXT one, in the same process. */
  saslSsl?: SaslSslOptions;
}

/** How a client reaches the SASL_SSL listener: what a test or a user passes to a secured client. */
export interface SecureListener {
  brokers: string[];
  /** CA certificate (PEM) the broker's certificate is signed with. */
  caFile: string;
  /** Accepted SASL mechanisms; the same user works with each. */
  mechanisms: readonly SaslMechanism[];
  username: string;
  password: string;
}

export interface LocalKafka {
  brokers: string[];
  pid: number;
  /** Whether this call started the broker (false: it was already running). */
  started: boolean;
  /** Present when the broker has a SASL_SSL listener. */
  secure?: SecureListener;
}

/** The pid of this data dir's broker, when one is running. */
export function runningPid(dataDir: string): number | undefined {
  return livePid(join(dataDir, 'kafka.pid'));
}

/** True once a broker answers a metadata request listing at least one registered broker. */
export async function brokerAnswers(brokers: string[], timeoutMs = 2000): Promise<boolean> {
  for (const broker of brokers) if ((await registeredBrokers(broker, timeoutMs)).length > 0) return true;
  return false;
}

/** The TLS material and the user of a SASL_SSL listener, made or read from `secretsDir`. */
export function secureListener(secretsDir: string, host: string, ports: number[], user: SaslUser): SecureListener & { keystoreFile: string } {
  const tls = ensureBrokerTls(secretsDir, host);
  return { brokers: ports.map((p) => `${host}:${p}`), caFile: tls.caFile, keystoreFile: tls.keystoreFile, mechanisms: SASL_MECHANISMS, username: user.username, password: user.password };
}

/**
 * Starts the local broker (resolving and formatting first when needed) and
 * returns once it answers metadata requests. A broker already running from this
 * data dir is reused. The broker runs detached, so it outlives this process
 * until `stopLocalKafka` (or `sluice kafka down`).
 */
export async function startLocalKafka(options: LocalKafkaOptions, log: Logger, startTimeoutMs = 90_000): Promise<LocalKafka> {
  const brokers = [`${options.host}:${options.port}`];
  // The user is settled first: a password that contradicts the formatted data fails before anything starts.
  const user = saslUser(options.dataDir, options.saslSsl?.username ?? 'sluice', options.saslSsl?.password);
  const secure = options.saslSsl ? secureListener(options.dataDir, options.host, [options.saslSsl.port], user) : undefined;
  const publicSecure = secure ? { brokers: secure.brokers, caFile: secure.caFile, mechanisms: secure.mechanisms, username: secure.username, password: secure.password } : undefined;

  const existing = runningPid(options.dataDir);
  if (existing !== undefined && (await brokerAnswers(brokers))) {
    log.info({ brokers, pid: existing }, 'local Kafka already running');
    return { brokers, pid: existing, started: false, ...(publicSecure ? { secure: publicSecure } : {}) };
  }
  if (existing === undefined && (await brokerAnswers(brokers, 1000))) {
    throw new LocalKafkaError(`something already answers as Kafka on ${brokers[0]} but was not started from ${options.dataDir}; stop it, or set KAFKA_BROKERS=${brokers[0]} to use it`);
  }
  const libs = ensureKafkaJars(options, log);
  const replication = { factor: replicationFactor(1), minInsync: minInsyncReplicas(replicationFactor(1)) };
  const node = new KafkaNode(
    {
      version: options.version,
      nodeId: 1,
      host: options.host,
      port: options.port,
      controllerPort: options.controllerPort,
      dataDir: options.dataDir,
      voters: [{ id: 1, host: options.host, controllerPort: options.controllerPort }],
      replication,
      ...(secure && options.saslSsl ? { saslSsl: { port: options.saslSsl.port, keystoreFile: secure.keystoreFile, plainUsers: { [user.username]: user.password } } } : {}),
    },
    { libs, heap: options.heap },
    log,
  );
  node.configure();
  if (!node.isFormatted()) node.format(newClusterId(), user);
  else if (secure && !recordedSaslUser(options.dataDir)) throw noScramUsers(options.dataDir);
  const pid = node.spawn();
  await node.waitReady(1, Date.now() + startTimeoutMs);
  log.info({ pid, brokers, ...(publicSecure ? { saslSsl: publicSecure.brokers } : {}) }, 'local Kafka is ready');
  return { brokers, pid, started: true, ...(publicSecure ? { secure: publicSecure } : {}) };
}

function noScramUsers(dataDir: string): LocalKafkaError {
  return new LocalKafkaError(
    `the local broker in ${dataDir} was formatted before Sluice created SASL users at format time, so SCRAM logins would fail; stop it and delete ${dataDir} to enable SLUICE_KAFKA_SASL_SSL_PORT`,
  );
}

/** Stops the data dir's broker with SIGTERM (a clean shutdown) and waits for it to exit. */
export function stopLocalKafka(dataDir: string, log: Logger, timeoutMs = 60_000): Promise<boolean> {
  return stopDaemon(join(dataDir, 'kafka.pid'), 'Kafka', log, timeoutMs);
}

function saslSslOptions(config: SluiceConfig): SaslSslOptions | undefined {
  if (config.kafkaSaslSslPort === undefined) return undefined;
  return { port: config.kafkaSaslSslPort, username: config.localKafkaSaslUsername, ...(config.localKafkaSaslPassword === undefined ? {} : { password: config.localKafkaSaslPassword }) };
}

export function localKafkaOptions(config: SluiceConfig, dataSubdir = 'kafka'): LocalKafkaOptions {
  const saslSsl = saslSslOptions(config);
  return {
    version: config.kafkaVersion,
    host: config.kafkaHost,
    port: config.kafkaPort,
    controllerPort: config.kafkaControllerPort,
    heap: config.kafkaHeap,
    cacheDir: config.kafkaCacheDir,
    dataDir: join(config.dataDir, dataSubdir),
    ...(saslSsl ? { saslSsl } : {}),
  };
}
