import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SluiceConfig } from '../core/config.ts';
import { livePid } from '../core/daemon.ts';
import { LocalKafkaError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { brokerAnswers, localKafkaOptions, secureListener, type LocalKafkaOptions, type SecureListener } from './broker.ts';
import { ensureKafkaJars } from './jars.ts';
import { KafkaNode, newClusterId, stopNode } from './node.ts';
import { fetchMetadata } from './probe.ts';
import type { NodeSpec, Voter } from './properties.ts';
import { minInsyncReplicas, replicationFactor } from './replication.ts';
import { recordedSaslUser, recordSaslUser, saslUser } from './sasl.ts';
import { activeController } from './tools.ts';
import { pollUntil } from '../core/deadline.ts';

/**
 * A local KRaft cluster of N combined broker+controller nodes, all voters of
 * the quorum: three JVMs rather than six on a 2-core box, and killing a node
 * takes down a broker and a voter at once, as losing a machine does (2 of 3
 * voters keep the quorum). Node N (from 1) listens on port + 2(N−1), its
 * controller on controllerPort + 2(N−1) and a SASL_SSL listener, when asked,
 * on saslSslPort + 2(N−1): with the defaults 9092, 9094, 9096 for clients and
 * 9093, 9095, 9097 for the quorum. Data lives under <dataDir>/node-N; the
 * cluster's id, user and TLS material under <dataDir>.
 */

export interface LocalClusterOptions extends LocalKafkaOptions {
  /** Number of nodes (3 for a replicated cluster). */
  nodes: number;
}

/** One node, for fault tests: crash it, freeze it, stop or restart it. */
export interface ClusterNode {
  id: number;
  /** host:port of its PLAINTEXT listener. */
  address: string;
  dataDir: string;
  pid(): number | undefined;
  /** SIGKILL by default (a crash); resolves once a killed process is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again and resolves once it serves and sees every node registered. */
  start(): Promise<void>;
  /** SIGTERM: a clean shutdown. */
  stop(): Promise<boolean>;
}

export interface LocalCluster {
  brokers: string[];
  nodes: ClusterNode[];
  /** Whether this call started any node (false: all were running). */
  started: boolean;
  secure?: SecureListener;
  /** The node id of the active controller (the quorum leader). */
  controllerId(): Promise<number>;
  /** Resolves once `nodeId` is in the ISR of every partition of `topic`. */
  waitForIsr(topic: string, nodeId: number, timeoutMs?: number): Promise<void>;
}

interface ClusterRecord {
  clusterId: string;
  brokers: string[];
}

function recordFile(dataDir: string): string {
  return join(dataDir, 'cluster.json');
}

function readRecord(dataDir: string): ClusterRecord | undefined {
  return existsSync(recordFile(dataDir)) ? (JSON.parse(readFileSync(recordFile(dataDir), 'utf8')) as ClusterRecord) : undefined;
}

function nodeIds(count: number): number[] {
  return Array.from({ length: count }, (_, i) => i + 1);
}

function nodeSpecs(options: LocalClusterOptions, keystoreFile: string | undefined, plainUsers: Record<string, string>): NodeSpec[] {
  const offset = (id: number): number => 2 * (id - 1);
  const voters: Voter[] = nodeIds(options.nodes).map((id) => ({ id, host: options.host, controllerPort: options.controllerPort + offset(id) }));
  const factor = replicationFactor(options.nodes);
  return nodeIds(options.nodes).map((id) => ({
    version: options.version,
    nodeId: id,
    host: options.host,
    port: options.port + offset(id),
    controllerPort: options.controllerPort + offset(id),
    dataDir: join(options.dataDir, `node-${id}`),
    voters,
    replication: { factor, minInsync: minInsyncReplicas(factor) },
    ...(options.saslSsl && keystoreFile ? { saslSsl: { port: options.saslSsl.port + offset(id), keystoreFile, plainUsers } } : {}),
  }));
}

/** Until `ready` says yes or the deadline passes. */
async function until(ready: () => Promise<boolean>, deadline: number, what: string): Promise<void> {
  if (await pollUntil(ready, deadline, 200)) return;
  throw new LocalKafkaError(`timed out waiting for ${what}`);
}

/**
 * Starts the nodes that are not running (all of them on a fresh data dir, which
 * is formatted first) and resolves once every node serves and sees all nodes
 * registered. Nodes run detached, like the single broker.
 */
export async function startLocalCluster(options: LocalClusterOptions, log: Logger, startTimeoutMs = 120_000): Promise<LocalCluster> {
  if (!Number.isInteger(options.nodes) || options.nodes < 1 || options.nodes > 9) throw new LocalKafkaError(`a local cluster has 1 to 9 nodes, got ${options.nodes}`);
  mkdirSync(options.dataDir, { recursive: true });
  const user = saslUser(options.dataDir, options.saslSsl?.username ?? 'sluice', options.saslSsl?.password);
  const saslPorts = options.saslSsl ? nodeIds(options.nodes).map((id) => options.saslSsl!.port + 2 * (id - 1)) : [];
  const secure = options.saslSsl ? secureListener(options.dataDir, options.host, saslPorts, user) : undefined;
  const libs = ensureKafkaJars(options, log);
  const specs = nodeSpecs(options, secure?.keystoreFile, { [user.username]: user.password });
  const nodes = specs.map((spec) => new KafkaNode(spec, { libs, heap: options.heap }, log));
  const brokers = nodes.map((n) => n.address);

  const record = readRecord(options.dataDir) ?? { clusterId: newClusterId(), brokers };
  if (secure && nodes.some((n) => n.isFormatted()) && !recordedSaslUser(options.dataDir)) {
    throw new LocalKafkaError(`the local cluster in ${options.dataDir} has no recorded SASL user; stop it and delete ${options.dataDir} to enable SLUICE_KAFKA_SASL_SSL_PORT`);
  }
  let started = false;
  for (const node of nodes) {
    if (node.pid() !== undefined) continue;
    if (await brokerAnswers([node.address], 1000)) {
      throw new LocalKafkaError(
        `something already answers as Kafka on ${node.address} but was not started from ${node.spec.dataDir}; stop it (\`sluice kafka down\` stops the single local broker) first`,
      );
    }
    node.configure();
    if (!node.isFormatted()) {
      node.format(record.clusterId, user);
      recordSaslUser(options.dataDir, user);
    }
    node.spawn();
    started = true;
  }
  writeFileSync(recordFile(options.dataDir), `${JSON.stringify({ ...record, brokers })}\n`);
  const deadline = Date.now() + startTimeoutMs;
  await Promise.all(nodes.map((node) => node.waitReady(nodes.length, deadline)));
  const publicSecure = secure ? { brokers: secure.brokers, caFile: secure.caFile, mechanisms: secure.mechanisms, username: secure.username, password: secure.password } : undefined;
  log.info({ brokers, ...(publicSecure ? { saslSsl: publicSecure.brokers } : {}) }, started ? 'local Kafka cluster is ready' : 'local Kafka cluster already running');

  const liveBroker = (): string => {
    const live = nodes.find((n) => n.pid() !== undefined);
    if (!live) throw new LocalKafkaError('no node of the local cluster is running');
    return live.address;
  };
  return {
    brokers,
    started,
    ...(publicSecure ? { secure: publicSecure } : {}),
    nodes: nodes.map((node) => ({
      id: node.id,
      address: node.address,
      dataDir: node.spec.dataDir,
      pid: () => node.pid(),
      kill: (signal) => node.kill(signal),
      start: async () => {
        node.configure();
        node.spawn();
        await node.waitReady(nodes.length, Date.now() + startTimeoutMs);
      },
      stop: () => node.stop(),
    })),
    controllerId: () => activeController(libs, liveBroker()),
    waitForIsr: (topic, nodeId, timeoutMs = 60_000) =>
      until(
        async () => {
          const metadata = await fetchMetadata(liveBroker(), [topic]).catch(() => undefined);
          const partitions = metadata?.topics.find((t) => t.name === topic)?.partitions ?? [];
          return partitions.length > 0 && partitions.every((p) => p.isr.includes(nodeId));
        },
        Date.now() + timeoutMs,
        `node ${nodeId} to be back in the ISR of ${topic}`,
      ),
  };
}

/** Where `sluice kafka up --brokers N` keeps its cluster. */
export function localClusterDir(config: SluiceConfig): string {
  return join(config.dataDir, 'kafka-cluster');
}

export function localClusterOptions(config: SluiceConfig, nodes: number): LocalClusterOptions {
  return { ...localKafkaOptions(config), dataDir: localClusterDir(config), heap: config.kafkaClusterHeap, nodes };
}

function nodeDirs(dataDir: string): string[] {
  const count = readRecord(dataDir)?.brokers.length ?? 0;
  return nodeIds(count).map((id) => join(dataDir, `node-${id}`));
}

/** The bootstrap list of the local cluster in `dataDir` when any of its nodes runs. */
export function runningCluster(dataDir: string): string[] | undefined {
  const record = readRecord(dataDir);
  if (!record) return undefined;
  const running = nodeDirs(dataDir).some((dir) => livePid(join(dir, 'kafka.pid')) !== undefined);
  return running ? record.brokers : undefined;
}

/**
 * Stops every node at once: each broker's controlled shutdown needs a quorum,
 * which nodes stopped one after another would take away from the last one.
 */
export async function stopLocalCluster(dataDir: string, log: Logger, timeoutMs = 60_000): Promise<boolean> {
  const stopped = await Promise.all(nodeDirs(dataDir).map((dir) => stopNode(dir, log, timeoutMs)));
  return stopped.some(Boolean);
}
