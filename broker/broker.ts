import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { livePid, recordPid, stopDaemon } from '../core/daemon.ts';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import { PROJECT_ROOT } from '../core/config.ts';
import { LocalKafkaError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';

/**
 * The embedded broker: Apache Kafka in KRaft mode (one node that is both broker
 * and controller), resolved from Maven Central with `mvn`, formatted once and
 * started as a plain `java` process. Tuned for a 2-core box.
 */

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
}

export interface LocalKafka {
  brokers: string[];
  pid: number;
  /** Whether this call started the broker (false: it was already running). */
  started: boolean;
}

function libsDir(options: LocalKafkaOptions): string {
  return join(options.cacheDir, options.version, 'libs');
}

function requireTool(command: string, args: string[], install: string): void {
  const result = spawnSync(command, args, { stdio: 'ignore' });
  if (result.error || result.status !== 0) {
    throw new LocalKafkaError(`\`${command}\` was not found, and the local Kafka broker needs it. Install ${install}, or set KAFKA_BROKERS to use an existing cluster.`);
  }
}

/** Resolves Kafka's jars into the cache unless a previous run completed it. */
export function ensureKafkaJars(options: LocalKafkaOptions, log: Logger): string {
  const libs = libsDir(options);
  const marker = join(libs, '.complete');
  if (existsSync(marker)) return libs;
  requireTool('java', ['-version'], 'Java 17 or newer (e.g. `apt-get install openjdk-17-jdk-headless`)');
  requireTool('mvn', ['-v'], 'Apache Maven (e.g. `apt-get install maven`)');
  log.info({ version: options.version, libs }, 'resolving Apache Kafka from Maven Central (first run only)');
  rmSync(libs, { recursive: true, force: true });
  mkdirSync(libs, { recursive: true });
  const result = spawnSync(
    'mvn',
    ['-q', '-B', '-f', join(PROJECT_ROOT, 'broker', 'pom.xml'), 'dependency:copy-dependencies', `-Dkafka.version=${options.version}`, `-DoutputDirectory=${libs}`, '-DincludeScope=runtime'],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  if (result.status !== 0) {
    throw new LocalKafkaError(`mvn could not resolve Apache Kafka ${options.version}:\n${(result.stdout + result.stderr).trim().slice(-4000)}`);
  }
  writeFileSync(marker, `${new Date().toISOString()}\n`);
  return libs;
}

function serverProperties(options: LocalKafkaOptions): string {
  const { host, port, controllerPort } = options;
  return [
    '# Written by Sluice (broker/broker.ts) on every start; edit the code, not this file.',
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@${host}:${controllerPort}`,
    `listeners=PLAINTEXT://${host}:${port},CONTROLLER://${host}:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://${host}:${port}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    `log.dirs=${join(options.dataDir, 'logs')}`,
    'num.partitions=1',
    'default.replication.factor=1',
    'min.insync.replicas=1',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=10',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=10',
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

function log4jProperties(dataDir: string): string {
  return [
    'log4j.rootLogger=WARN, file',
    'log4j.appender.file=org.apache.log4j.RollingFileAppender',
    `log4j.appender.file.File=${join(dataDir, 'server.log')}`,
    'log4j.appender.file.MaxFileSize=20MB',
    'log4j.appender.file.MaxBackupIndex=2',
    'log4j.appender.file.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n',
    'log4j.logger.kafka.server.BrokerServer=INFO',
    'log4j.logger.kafka.server.ControllerServer=INFO',
    'log4j.logger.kafka.Kafka$=INFO',
    '',
  ].join('\n');
}

function javaBase(options: LocalKafkaOptions, libs: string): string[] {
  return [
    `-Xms${options.heap}`,
    `-Xmx${options.heap}`,
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    '-XX:+ExitOnOutOfMemoryError',
    '-Djava.awt.headless=true',
    `-Dlog4j.configuration=file:${join(options.dataDir, 'log4j.properties')}`,
    '-cp',
    `${libs}/*`,
  ];
}

function pidFile(dataDir: string): string {
  return join(dataDir, 'kafka.pid');
}

/** The pid of this data dir's broker, when one is running. */
export function runningPid(dataDir: string): number | undefined {
  return livePid(pidFile(dataDir));
}

/** True once the broker answers a metadata request. */
export async function brokerAnswers(brokers: string[], timeoutMs = 2000): Promise<boolean> {
  const admin = new Kafka({
    clientId: 'sluice-probe',
    brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: Math.min(timeoutMs, 1000),
    requestTimeout: timeoutMs,
    retry: { retries: 0 },
  }).admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.length > 0;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Formats KRaft storage on first use; later starts keep the data. */
function formatStorage(options: LocalKafkaOptions, libs: string, log: Logger): void {
  if (existsSync(join(options.dataDir, 'logs', 'meta.properties'))) return;
  log.info({ dataDir: options.dataDir }, 'formatting KRaft storage');
  const result = spawnSync('java', [...javaBase({ ...options, heap: '256m' }, libs), 'kafka.tools.StorageTool', 'format', '-t', randomUUID(), '-c', join(options.dataDir, 'server.properties')], {
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new LocalKafkaError(`formatting Kafka storage failed:\n${(result.stdout + result.stderr).trim().slice(-4000)}`);
}

function tail(file: string, lines = 30): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

/**
 * Starts the local broker (resolving and formatting first when needed) and
 * returns once it answers metadata requests. A broker already running from this
 * data dir is reused. The broker runs detached, so it outlives this process
 * until `stopLocalKafka` (or `npm run kafka:down`).
 */
export async function startLocalKafka(options: LocalKafkaOptions, log: Logger, startTimeoutMs = 90_000): Promise<LocalKafka> {
  const brokers = [`${options.host}:${options.port}`];
  const existing = runningPid(options.dataDir);
  if (existing !== undefined && (await brokerAnswers(brokers))) {
    log.info({ brokers, pid: existing }, 'local Kafka already running');
    return { brokers, pid: existing, started: false };
  }
  if (existing === undefined && (await brokerAnswers(brokers, 1000))) {
    throw new LocalKafkaError(`something already answers as Kafka on ${brokers[0]} but was not started from ${options.dataDir}; stop it, or set KAFKA_BROKERS=${brokers[0]} to use it`);
  }
  const libs = ensureKafkaJars(options, log);
  mkdirSync(join(options.dataDir, 'logs'), { recursive: true });
  writeFileSync(join(options.dataDir, 'server.properties'), serverProperties(options));
  writeFileSync(join(options.dataDir, 'log4j.properties'), log4jProperties(options.dataDir));
  formatStorage(options, libs, log);

  const stdoutFile = join(options.dataDir, 'stdout.log');
  const out = openSync(stdoutFile, 'a');
  const child = spawn('java', [...javaBase(options, libs), 'kafka.Kafka', join(options.dataDir, 'server.properties')], {
    detached: true,
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  if (child.pid === undefined) throw new LocalKafkaError('could not spawn java');
  const pid = child.pid;
  let exitCode: number | null | undefined;
  child.once('exit', (code) => {
    exitCode = code;
  });
  child.unref();
  recordPid(pidFile(options.dataDir), pid);
  log.info({ pid, brokers, dataDir: options.dataDir }, 'starting local Kafka');

  const deadline = Date.now() + startTimeoutMs;
  while (Date.now() < deadline) {
    if (exitCode !== undefined) {
      throw new LocalKafkaError(
        `Kafka exited with code ${exitCode} while starting. Last lines of ${join(options.dataDir, 'server.log')}:\n${tail(join(options.dataDir, 'server.log'))}\n${tail(stdoutFile, 10)}`,
      );
    }
    if (await brokerAnswers(brokers)) {
      log.info({ pid, brokers }, 'local Kafka is ready');
      return { brokers, pid, started: true };
    }
    await sleep(250);
  }
  process.kill(pid, 'SIGKILL');
  throw new LocalKafkaError(`Kafka did not answer on ${brokers[0]} within ${startTimeoutMs} ms. Last lines of its log:\n${tail(join(options.dataDir, 'server.log'))}`);
}

/** Stops the data dir's broker with SIGTERM (a clean shutdown) and waits for it to exit. */
export function stopLocalKafka(dataDir: string, log: Logger, timeoutMs = 60_000): Promise<boolean> {
  return stopDaemon(pidFile(dataDir), 'Kafka', log, timeoutMs);
}

export function localKafkaOptions(config: import('../core/config.ts').SluiceConfig, dataSubdir = 'kafka'): LocalKafkaOptions {
  return {
    version: config.kafkaVersion,
    host: config.kafkaHost,
    port: config.kafkaPort,
    controllerPort: config.kafkaControllerPort,
    heap: config.kafkaHeap,
    cacheDir: config.kafkaCacheDir,
    dataDir: join(config.dataDir, dataSubdir),
  };
}
