import { homedir } from 'node:os';
import { inspect } from 'node:util';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from './errors.ts';
import { isLoopback } from './loopback.ts';

/** The repository root: defaults for files (topology, data) are relative to it. */
export const PROJECT_ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));

type Parser<T> = (raw: string, name: string) => T;

interface OptionSpec<T> {
  env: string;
  default: string;
  description: string;
  parse: Parser<T>;
}

const integer =
  (min: number, max: number): Parser<number> =>
  (raw, name) => {
    if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(name, `expected a whole number, got "${raw}"`);
    const n = Number(raw);
    if (n < min || n > max) throw new ConfigError(name, `expected a number from ${min} to ${max}, got ${n}`);
    return n;
  };

const port: Parser<number> = integer(0, 65535);

const text: Parser<string> = (raw, name) => {
  if (raw.trim() === '') throw new ConfigError(name, 'must not be empty');
  return raw.trim();
};

const optionalText: Parser<string | undefined> = (raw) => (raw.trim() === '' ? undefined : raw.trim());

const path: Parser<string> = (raw, name) => {
  const p = text(raw, name);
  return isAbsolute(p) ? p : resolve(PROJECT_ROOT, p.replace(/^~(?=\/)/, homedir()));
};

const url: Parser<string> = (raw, name) => {
  try {
    const u = new URL(raw.trim());
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
    return u.toString().replace(/\/$/, '');
  } catch {
    throw new ConfigError(name, `expected an http(s) URL, got "${raw}"`);
  }
};

const brokers: Parser<string[] | undefined> = (raw, name) => {
  if (raw.trim() === '') return undefined;
  const list = raw
    .split(',')
    .map((b) => b.trim())
    .filter(Boolean);
  for (const b of list) {
    if (!/^[^\s:]+:\d{1,5}$/.test(b)) throw new ConfigError(name, `expected host:port[,host:port...], got "${b}"`);
  }
  return list;
};

const optionalUrl: Parser<string | undefined> = (raw, name) => (raw.trim() === '' ? undefined : url(raw, name));

const urlList: Parser<string[] | undefined> = (raw, name) => {
  if (raw.trim() === '') return undefined;
  return raw.split(',').map((u) => url(u, name));
};

const amqpUrl: Parser<string> = (raw, name) => {
  try {
    const u = new URL(raw.trim());
    if (u.protocol !== 'amqp:' && u.protocol !== 'amqps:') throw new Error('not amqp(s)');
    return raw.trim();
  } catch {
    throw new ConfigError(name, `expected an amqp(s):// URL, got "${raw}"`);
  }
};

const keyPrefix: Parser<string> = (raw, name) => {
  const p = text(raw, name);
  if (!p.startsWith('/') || !p.endsWith('/')) throw new ConfigError(name, `expected a key prefix that starts and ends with "/", got "${raw}"`);
  return p;
};

const oneOf =
  <T extends string>(...values: T[]): Parser<T> =>
  (raw, name) => {
    const v = raw.trim() as T;
    if (!values.includes(v)) throw new ConfigError(name, `expected one of ${values.join(', ')}, got "${raw}"`);
    return v;
  };

const optionalPath: Parser<string | undefined> = (raw, name) => (raw.trim() === '' ? undefined : path(raw, name));

const flag: Parser<boolean> = (raw, name) => {
  const v = raw.trim().toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0' || v === '') return false;
  throw new ConfigError(name, `expected true or false, got "${raw}"`);
};

/**
 * A password or key passphrase. It never prints: logging the config, JSON of it
 * or an error that quotes it shows `[redacted]`; only the Kafka seam reveals it.
 */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '[redacted]';
  }
  toJSON(): string {
    return '[redacted]';
  }
  [inspect.custom](): string {
    return '[redacted]';
  }
}

const secret: Parser<Secret | undefined> = (raw) => (raw === '' ? undefined : new Secret(raw));

const optionalPort: Parser<number | undefined> = (raw, name) => (raw.trim() === '' ? undefined : port(raw, name));

const kafkaVersion: Parser<string> = (raw, name) => {
  const v = raw.trim();
  if (!/^(3\.9|4\.\d+)\.\d+$/.test(v)) throw new ConfigError(name, `expected an Apache Kafka release from 3.9.0 (e.g. 4.4.0 or 3.9.1), got "${raw}"`);
  return v;
};

const heap: Parser<string> = (raw, name) => {
  if (!/^\d+[mMgG]$/.test(raw.trim())) throw new ConfigError(name, `expected a JVM size such as 512m or 1g, got "${raw}"`);
  return raw.trim();
};

/**
 * Every option Sluice reads, in one table: the README's configuration section is
 * generated from it, so the documentation cannot drift from the code.
 */
export const OPTIONS = {
  kafkaBrokers: {
    env: 'KAFKA_BROKERS',
    default: '',
    description: 'Kafka bootstrap servers (host:port,...). Unset: Sluice starts and uses its own local broker.',
    parse: brokers,
  },
  kafkaSecurityProtocol: {
    env: 'KAFKA_SECURITY_PROTOCOL',
    default: 'PLAINTEXT',
    description: "How clients talk to the brokers (Kafka's security.protocol): PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.",
    parse: oneOf('PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'),
  },
  kafkaSaslMechanism: {
    env: 'KAFKA_SASL_MECHANISM',
    default: '',
    description: 'SASL mechanism (sasl.mechanism) with SASL_PLAINTEXT or SASL_SSL: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER.',
    parse: (raw: string, name: string) => (raw.trim() === '' ? undefined : oneOf('PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512', 'OAUTHBEARER')(raw, name)),
  },
  kafkaSaslUsername: { env: 'KAFKA_SASL_USERNAME', default: '', description: 'SASL user name (PLAIN, SCRAM).', parse: optionalText },
  kafkaSaslPassword: {
    env: 'KAFKA_SASL_PASSWORD',
    default: '',
    description: 'SASL password (PLAIN, SCRAM). Never logged; prefer KAFKA_SASL_PASSWORD_FILE.',
    parse: secret,
  },
  kafkaSaslPasswordFile: {
    env: 'KAFKA_SASL_PASSWORD_FILE',
    default: '',
    description: 'File holding the SASL password (trailing newline ignored), instead of KAFKA_SASL_PASSWORD.',
    parse: optionalPath,
  },
  kafkaSaslOauthbearerTokenFile: {
    env: 'KAFKA_SASL_OAUTHBEARER_TOKEN_FILE',
    default: '',
    description: 'OAUTHBEARER: file holding the token, read again at every authentication (so a sidecar can refresh it).',
    parse: optionalPath,
  },
  kafkaSaslOauthbearerTokenCommand: {
    env: 'KAFKA_SASL_OAUTHBEARER_TOKEN_COMMAND',
    default: '',
    description: 'OAUTHBEARER: shell command printing a token on stdout, run at every authentication.',
    parse: optionalText,
  },
  kafkaSslCaLocation: {
    env: 'KAFKA_SSL_CA_LOCATION',
    default: '',
    description: "SSL/SASL_SSL: PEM file of the CA(s) that signed the brokers' certificates (default: the system's CAs).",
    parse: optionalPath,
  },
  kafkaSslCertificateLocation: {
    env: 'KAFKA_SSL_CERTIFICATE_LOCATION',
    default: '',
    description: "SSL/SASL_SSL: PEM file of this client's certificate (mutual TLS), with KAFKA_SSL_KEY_LOCATION.",
    parse: optionalPath,
  },
  kafkaSslKeyLocation: { env: 'KAFKA_SSL_KEY_LOCATION', default: '', description: "PEM file of the client certificate's private key (mutual TLS).", parse: optionalPath },
  kafkaSslKeyPassword: { env: 'KAFKA_SSL_KEY_PASSWORD', default: '', description: 'Passphrase of KAFKA_SSL_KEY_LOCATION, if it is encrypted. Never logged.', parse: secret },
  kafkaSslEndpointIdentification: {
    env: 'KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM',
    default: 'https',
    description: "`https`: check that a broker's certificate names the host connected to; `none`: do not (test clusters only).",
    parse: oneOf('https', 'none'),
  },
  kafkaConnectTimeoutMs: {
    env: 'SLUICE_KAFKA_CONNECT_TIMEOUT_MS',
    default: '5000',
    description: 'Longest wait for a connection to a broker (TCP, TLS and SASL).',
    parse: integer(100, 600_000),
  },
  kafkaRequestTimeoutMs: {
    env: 'SLUICE_KAFKA_REQUEST_TIMEOUT_MS',
    default: '30000',
    description: 'Longest wait for the answer to one Kafka request.',
    parse: integer(100, 600_000),
  },
  kafkaCompression: {
    env: 'SLUICE_COMPRESSION',
    default: 'none',
    description:
      "Compression of the record batches Sluice writes (Kafka's compression.type): none, gzip, snappy, lz4 or zstd. Applies to the ingress, the workers' outputs (plain and exactly-once) and the bridges; readers decompress any codec whatever this says.",
    parse: oneOf('none', 'gzip', 'snappy', 'lz4', 'zstd'),
  },
  // --- The local broker (broker/): used when KAFKA_BROKERS is unset, and by `sluice kafka up`. ---
  kafkaVersion: {
    env: 'SLUICE_KAFKA_VERSION',
    default: '4.4.0',
    description: 'Apache Kafka version of the local broker (4.x, or 3.9.x for a cluster like older production ones).',
    parse: kafkaVersion,
  },
  kafkaHost: { env: 'SLUICE_KAFKA_HOST', default: '127.0.0.1', description: 'Address the local broker listens on.', parse: text },
  kafkaPort: {
    env: 'SLUICE_KAFKA_PORT',
    default: '9092',
    description: 'Port of the local broker (PLAINTEXT). In a local cluster node N listens on this port + 2(N−1).',
    parse: port,
  },
  kafkaControllerPort: {
    env: 'SLUICE_KAFKA_CONTROLLER_PORT',
    default: '9093',
    description: 'KRaft controller port of the local broker. In a local cluster node N uses this port + 2(N−1).',
    parse: port,
  },
  kafkaHeap: { env: 'SLUICE_KAFKA_HEAP', default: '768m', description: 'JVM heap of the local broker.', parse: heap },
  kafkaClusterHeap: {
    env: 'SLUICE_KAFKA_CLUSTER_HEAP',
    default: '512m',
    description: 'JVM heap of each node of a local cluster (`sluice kafka up --brokers 3`).',
    parse: heap,
  },
  kafkaSaslSslPort: {
    env: 'SLUICE_KAFKA_SASL_SSL_PORT',
    default: '',
    description:
      'Port of a SASL_SSL listener (PLAIN, SCRAM-SHA-256/512) beside the PLAINTEXT one; empty: none. Its CA is <data dir>/kafka/tls/ca.crt. In a local cluster node N uses this port + 2(N−1).',
    parse: optionalPort,
  },
  localKafkaSaslUsername: { env: 'SLUICE_KAFKA_SASL_USERNAME', default: 'sluice', description: "The local broker's SASL user (created when its storage is formatted).", parse: text },
  localKafkaSaslPassword: {
    env: 'SLUICE_KAFKA_SASL_PASSWORD',
    default: '',
    description: "That user's password; empty: generated at format time and kept in <data dir>/kafka/sasl-user.json (mode 0600).",
    parse: optionalText,
  },
  kafkaCacheDir: {
    env: 'SLUICE_KAFKA_CACHE',
    default: '~/.cache/sluice/kafka',
    description: "Where the local broker's jars are resolved to (reused across runs).",
    parse: path,
  },
  // --- end of the local broker's options ---
  dataDir: { env: 'SLUICE_DATA_DIR', default: 'data', description: 'Local broker data and logs (gitignored).', parse: path },
  clientId: { env: 'SLUICE_CLIENT_ID', default: 'sluice', description: 'Kafka client id prefix.', parse: text },
  registryHost: { env: 'SLUICE_REGISTRY_HOST', default: '127.0.0.1', description: 'Address the schema registry listens on.', parse: text },
  registryPort: { env: 'SLUICE_REGISTRY_PORT', default: '8081', description: 'Port of the schema registry.', parse: port },
  registryUrl: {
    env: 'SLUICE_REGISTRY_URL',
    default: 'http://127.0.0.1:8081',
    description: "Schema registry the ingress, workers and CLI use (Sluice's or Confluent's).",
    parse: url,
  },
  registryTopic: {
    env: 'SLUICE_REGISTRY_TOPIC',
    default: '_schemas',
    description: "Compacted topic holding the registry's state.",
    parse: text,
  },
  ingressHost: { env: 'SLUICE_INGRESS_HOST', default: '127.0.0.1', description: 'Address the HTTP ingress listens on.', parse: text },
  ingressPort: { env: 'SLUICE_INGRESS_PORT', default: '8080', description: 'Port of the HTTP ingress.', parse: port },
  bodyLimit: {
    env: 'SLUICE_BODY_LIMIT',
    default: '1048576',
    description: 'Largest request body the ingress accepts, in bytes (larger: 413).',
    parse: integer(1024, 64 * 1024 * 1024),
  },
  jsonMaxDepth: {
    env: 'SLUICE_JSON_MAX_DEPTH',
    default: '128',
    description:
      'Deepest nesting of arrays/objects in a JSON request body of the ingress (a batch counts as one), the registry and the console, and in a JSON message the RabbitMQ bridge forwards; deeper: 400 (a dead letter) before parsing, whose cost grows with the depth.',
    parse: integer(2, 10_000),
  },
  lingerMs: {
    env: 'SLUICE_LINGER_MS',
    // 0 still coalesces: records arriving while a send is in flight form the next
    // batch, and an idle ingress sends on the next event-loop turn. A timer only
    // adds latency (at 1 connection, 0 measured 3x the throughput of 1 ms).
    default: '0',
    description: 'How long an idle ingress waits to coalesce concurrent events into one produce request (0: the next event-loop turn).',
    parse: integer(0, 1000),
  },
  batchMaxRecords: {
    env: 'SLUICE_BATCH_MAX_RECORDS',
    default: '2000',
    description: 'Most records in one produce request.',
    parse: integer(1, 100_000),
  },
  maxQueuedRecords: {
    env: 'SLUICE_MAX_QUEUED_RECORDS',
    default: '50000',
    description: 'Records waiting for the broker before the ingress answers 503.',
    parse: integer(1, 10_000_000),
  },
  produceTimeoutMs: {
    env: 'SLUICE_PRODUCE_TIMEOUT_MS',
    default: '10000',
    description: "Longest wait for the broker's acknowledgement before answering 503.",
    parse: integer(100, 600_000),
  },
  admissionWaitPercent: {
    env: 'SLUICE_ADMISSION_WAIT_PERCENT',
    // 20% of the deadline keeps several batches queued (enough to keep the sends full) while a request admitted at
    // the limit still has most of its deadline left for the send itself.
    default: '20',
    description:
      'Longest wait a produce request may expect behind the records already waiting for Kafka (their count divided by the measured drain rate, plus the event-loop delay), in percent of SLUICE_PRODUCE_TIMEOUT_MS; beyond it the ingress answers 503 + Retry-After at once, without reading the body. Under a sustained overload (this limit refusing, the producer never idle) the queue holds at most what the recent peak drain empties in 30% of that wait. 0: only SLUICE_MAX_QUEUED_RECORDS bounds the queue.',
    parse: integer(0, 100),
  },
  idempotencyRetentionMs: {
    env: 'SLUICE_IDEMPOTENCY_RETENTION_MS',
    default: '86400000',
    description: 'How long the ingress remembers an Idempotency-Key (default 24 h); also the retention of SLUICE_IDEMPOTENCY_TOPIC.',
    parse: integer(1000, 30 * 86_400_000),
  },
  idempotencyLeaseMs: {
    env: 'SLUICE_IDEMPOTENCY_LEASE_MS',
    default: '30000',
    description:
      'How long a replica that claimed an Idempotency-Key may still be writing its events: a retry elsewhere gets 409 until then, and takes the key over after. Keep it above SLUICE_PRODUCE_TIMEOUT_MS.',
    parse: integer(1000, 3_600_000),
  },
  idempotencyTopic: {
    env: 'SLUICE_IDEMPOTENCY_TOPIC',
    default: '_sluice_idempotency',
    description: 'Topic of the claims of produce requests sent with an Idempotency-Key, followed by every ingress replica (created by the ingress).',
    parse: text,
  },
  consoleHost: { env: 'SLUICE_CONSOLE_HOST', default: '127.0.0.1', description: 'Address the web console listens on.', parse: text },
  consolePort: { env: 'SLUICE_CONSOLE_PORT', default: '8082', description: 'Port of the web console (`sluice console`).', parse: port },
  consoleLagIntervalMs: {
    env: 'SLUICE_CONSOLE_LAG_INTERVAL_MS',
    default: '5000',
    description: 'How often the console samples the lag of the consumer groups it shows.',
    parse: integer(500, 600_000),
  },
  consoleDeadLetterSuffix: {
    env: 'SLUICE_CONSOLE_DLQ_SUFFIX',
    default: '.dlq',
    description: 'Topics whose name ends in this are dead-letter topics to the console: it lists their dead letters, and operators replay them.',
    parse: text,
  },
  topologyFile: {
    env: 'SLUICE_TOPOLOGY',
    default: 'topology/sluice.topology.yaml',
    description: 'The topology file (topics, schemas, routes, workers).',
    parse: path,
  },
  topologyStateTopic: {
    env: 'SLUICE_TOPOLOGY_STATE_TOPIC',
    default: '_sluice_topology',
    description: 'Compacted topic recording which topics each applied topology manages (finds removed topics).',
    parse: text,
  },
  workers: {
    env: 'SLUICE_WORKERS',
    default: '*',
    description: '`sluice up`: comma-separated workers to run in-process (* = all, empty = none).',
    parse: (raw: string) => raw.trim(),
  },
  workerBatchSize: {
    env: 'SLUICE_WORKER_BATCH_SIZE',
    default: '5000',
    description: 'Most records of one partition a worker handles before queueing them for commit (a chunk); a transaction or offset commit holds many chunks (SLUICE_WORKER_TXN_MAX_*).',
    parse: integer(1, 100_000),
  },
  workerBatchBytes: {
    env: 'SLUICE_WORKER_BATCH_BYTES',
    default: '524288',
    // Every part of a transaction goes in one produce request: its per-partition record
    // batches must stay under the broker's message.max.bytes (1 MB by default).
    description:
      "Most output bytes (keys, values, headers) a worker produces per chunk and per produce request; keep it well under the broker's message.max.bytes. A record whose outputs alone exceed it is dead-lettered.",
    parse: integer(1024, 64 * 1024 * 1024),
  },
  // A worker commits as soon as nothing more is queued, so at low rates a transaction
  // closes at once; these bound it under load, where it spans many batches and partitions.
  workerTxnMaxRecords: {
    env: 'SLUICE_WORKER_TXN_MAX_RECORDS',
    default: '20000',
    description: 'Most input records per transaction (exactly-once) or per offset commit (at-least-once); one commits sooner when nothing more is waiting.',
    parse: integer(1, 1_000_000),
  },
  workerTxnMaxBytes: {
    env: 'SLUICE_WORKER_TXN_MAX_BYTES',
    default: '8388608',
    description: 'Most output bytes per transaction (exactly-once) or per offset commit (at-least-once), sent in produce requests of SLUICE_WORKER_BATCH_BYTES.',
    parse: integer(1024, 1024 * 1024 * 1024),
  },
  workerTxnMaxMs: {
    env: 'SLUICE_WORKER_TXN_MAX_MS',
    default: '100',
    // Outputs are visible to read_committed readers only at the commit: under load this adds to their latency.
    description:
      'Longest a transaction (exactly-once) or offset commit (at-least-once) keeps taking records under load before it commits; outputs become visible to read_committed readers at the commit.',
    parse: integer(1, 60_000),
  },
  workerConcurrency: {
    env: 'SLUICE_WORKER_CONCURRENCY',
    default: '8',
    // At least the partition count: an exactly-once partition waits on several
    // transaction round trips, and partitions queued behind it add that to latency.
    description: 'Partitions a worker processes at once (each in order); keep it at least the partition count.',
    parse: integer(1, 1024),
  },
  workerMaxAttempts: {
    env: 'SLUICE_WORKER_MAX_ATTEMPTS',
    default: '5',
    description: 'Attempts at a record whose handler fails with a retryable error before it is dead-lettered.',
    parse: integer(1, 1000),
  },
  workerRetryBaseMs: {
    env: 'SLUICE_WORKER_RETRY_BASE_MS',
    default: '200',
    description: 'First retry delay of a retryable handler failure; doubles each attempt, with full jitter.',
    parse: integer(0, 600_000),
  },
  workerRetryMaxMs: {
    env: 'SLUICE_WORKER_RETRY_MAX_MS',
    default: '10000',
    description: 'Longest delay between two attempts at a record.',
    parse: integer(0, 3_600_000),
  },
  workerGroupProtocol: {
    env: 'SLUICE_WORKER_GROUP_PROTOCOL',
    default: 'classic',
    description: 'Consumer group protocol of the workers: classic (any Kafka) or consumer (KIP-848, Kafka >= 4.0: a member joining or leaving does not stop the others).',
    parse: oneOf('classic', 'consumer'),
  },
  workerSessionTimeoutMs: {
    env: 'SLUICE_WORKER_SESSION_TIMEOUT_MS',
    default: '10000',
    description: 'How long the group waits for a silent worker (e.g. killed) before giving its partitions to others.',
    parse: integer(6000, 300_000),
  },
  workerMetricsHost: {
    env: 'SLUICE_WORKER_METRICS_HOST',
    default: '127.0.0.1',
    description: "Address the workers' Prometheus endpoint (GET /metrics) listens on.",
    parse: text,
  },
  workerMetricsPort: {
    env: 'SLUICE_WORKER_METRICS_PORT',
    default: '9464',
    description: "Port of the workers' GET /metrics (one per process; when taken, a free port is used and logged; 0 = any free port).",
    parse: port,
  },
  heapGrowingPercent: {
    env: 'SLUICE_HEAP_GROWING_PERCENT',
    default: '100',
    description:
      "How far V8 lets a service's old generation grow past what its last full garbage collection kept before the next one, in percent (V8's --heap-growing-percent; 0 leaves V8's own factor, which grows to 4x under load). A request's objects outlive two young collections and die old, so under load V8's own factor let the heap hold 3-5 times its live objects: at twice the ingress's capacity, 1 GB of RSS for 50-90 MB live.",
    parse: integer(0, 1000),
  },
  shutdownTimeoutMs: {
    env: 'SLUICE_SHUTDOWN_TIMEOUT_MS',
    default: '25000',
    description: 'Longest graceful shutdown before the process exits anyway.',
    parse: integer(1000, 600_000),
  },
  amqpUrl: {
    env: 'SLUICE_AMQP_URL',
    default: 'amqp://guest:guest@127.0.0.1:5672',
    description: 'RabbitMQ the bridges connect to (amqp[s]://user:password@host:port[/vhost]).',
    parse: amqpUrl,
  },
  etcd: {
    env: 'SLUICE_ETCD',
    default: '',
    description: 'etcd endpoints for service discovery (http://host:port,...). Set: services register there. Unset: `--discovery` starts a local etcd.',
    parse: urlList,
  },
  etcdPort: { env: 'SLUICE_ETCD_PORT', default: '2379', description: 'Client port of the local etcd (`--discovery` without SLUICE_ETCD).', parse: port },
  etcdPeerPort: { env: 'SLUICE_ETCD_PEER_PORT', default: '2380', description: 'Peer port of the local etcd.', parse: port },
  discoveryPrefix: {
    env: 'SLUICE_DISCOVERY_PREFIX',
    default: '/sluice/services/',
    description: 'Key prefix under which instances register in etcd.',
    parse: keyPrefix,
  },
  discoveryTtlS: {
    env: 'SLUICE_DISCOVERY_TTL_S',
    default: '10',
    description: 'Lease of a registration in seconds: a killed instance disappears this long after its last keep-alive.',
    parse: integer(2, 3600),
  },
  advertiseHost: {
    env: 'SLUICE_ADVERTISE_HOST',
    default: '',
    description: 'Address other hosts reach this instance at, as registered in discovery (default: the address it listens on).',
    parse: optionalText,
  },
  lbHost: { env: 'SLUICE_LB_HOST', default: '127.0.0.1', description: 'Address HAProxy (`sluice lb`) listens on.', parse: text },
  lbPort: { env: 'SLUICE_LB_PORT', default: '8000', description: 'Port HAProxy (`sluice lb`) listens on, in front of the ingress replicas.', parse: port },
  accessFile: {
    env: 'SLUICE_ACCESS_FILE',
    default: '',
    description:
      'Access file (YAML or JSON): principals, their API-key and password hashes, and what each may do (`sluice access`). Unset: the HTTP services are open, and may bind only loopback addresses.',
    parse: optionalPath,
  },
  insecure: {
    env: 'SLUICE_INSECURE',
    default: 'false',
    description: 'Allow binding a non-loopback address without an access file (`--insecure`): anyone who reaches it may do anything.',
    parse: flag,
  },
  tlsCert: { env: 'SLUICE_TLS_CERT', default: '', description: 'PEM certificate (chain) of the HTTP listeners; with SLUICE_TLS_KEY, they serve HTTPS only.', parse: optionalPath },
  tlsKey: { env: 'SLUICE_TLS_KEY', default: '', description: 'PEM private key of SLUICE_TLS_CERT.', parse: optionalPath },
  tlsCa: {
    env: 'SLUICE_TLS_CA',
    default: '',
    description: "PEM CA certificate(s) Sluice's HTTP clients (CLI, ingress, workers, console) trust, besides the system's.",
    parse: optionalPath,
  },
  oidcJwksUrl: {
    env: 'SLUICE_OIDC_JWKS_URL',
    default: '',
    description:
      "JWKS URL of an OAuth2/OIDC issuer: the HTTP services then also accept its JWTs as bearer tokens (the principal whose `jwtSubject` is the token's `sub`); https, or http to a loopback address.",
    parse: optionalUrl,
  },
  oidcIssuer: { env: 'SLUICE_OIDC_ISSUER', default: '', description: 'Required `iss` of accepted JWTs (must be set with SLUICE_OIDC_JWKS_URL).', parse: optionalText },
  oidcAudience: { env: 'SLUICE_OIDC_AUDIENCE', default: '', description: 'Required `aud` of accepted JWTs (must be set with SLUICE_OIDC_JWKS_URL).', parse: optionalText },
  rateLimit: {
    env: 'SLUICE_RATE_LIMIT',
    default: '60000',
    description: 'Requests per minute one principal may make to one HTTP service (429 + Retry-After beyond); with an access file only (a principal may set its own `rateLimit`); 0: no limit.',
    parse: integer(0, 100_000_000),
  },
  httpHeadersTimeoutMs: {
    env: 'SLUICE_HTTP_HEADERS_TIMEOUT_MS',
    default: '10000',
    description: "Longest time a client may take to send a request's headers.",
    parse: integer(1000, 600_000),
  },
  httpRequestTimeoutMs: {
    env: 'SLUICE_HTTP_REQUEST_TIMEOUT_MS',
    default: '30000',
    description: 'Longest time a client may take to send a whole request (headers and body).',
    parse: integer(1000, 3_600_000),
  },
  httpIdleTimeoutMs: {
    env: 'SLUICE_HTTP_IDLE_TIMEOUT_MS',
    default: '120000',
    description: 'A connection with no traffic for this long is closed (live tails send a heartbeat every 15 s).',
    parse: integer(1000, 3_600_000),
  },
  httpKeepAliveTimeoutMs: {
    env: 'SLUICE_HTTP_KEEPALIVE_TIMEOUT_MS',
    default: '72000',
    description: "How long an idle keep-alive connection is kept between requests (above load balancers' idle timeouts).",
    parse: integer(1000, 600_000),
  },
  httpMaxConnections: {
    env: 'SLUICE_HTTP_MAX_CONNECTIONS',
    default: '10000',
    description: 'Most open connections per HTTP listener; more are refused.',
    parse: integer(1, 1_000_000),
  },
  httpMaxPipelined: {
    env: 'SLUICE_HTTP_MAX_PIPELINED',
    default: '32',
    description:
      'Most requests one connection may have in progress at once (HTTP/1.1 pipelining); beyond it the listener reads no more from that connection until one is answered (what one read already holds, up to 64 KiB, is still parsed).',
    parse: integer(2, 100_000),
  },
  consoleSessionTtlMs: {
    env: 'SLUICE_CONSOLE_SESSION_TTL_MS',
    default: '28800000',
    description: 'How long a console login lasts.',
    parse: integer(60_000, 30 * 24 * 3_600_000),
  },
  consoleSecureCookie: {
    env: 'SLUICE_CONSOLE_SECURE_COOKIE',
    default: 'auto',
    description: "The console session cookie's `Secure` flag: auto (set when the console serves HTTPS itself), true (behind a TLS-terminating proxy: browsers send it over HTTPS only), or false.",
    parse: oneOf('auto', 'true', 'false'),
  },
  logLevel: {
    env: 'SLUICE_LOG_LEVEL',
    default: 'info',
    description: 'Log level: trace, debug, info, warn, error, fatal, silent.',
    parse: oneOf('trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'),
  },
  logFormat: {
    env: 'SLUICE_LOG_FORMAT',
    default: 'auto',
    description: 'Log format: json, pretty, or auto (pretty on a terminal).',
    parse: oneOf('auto', 'json', 'pretty'),
  },
  otelExporterEndpoint: {
    env: 'OTEL_EXPORTER_OTLP_ENDPOINT',
    default: '',
    description: 'OpenTelemetry collector base URL (OTLP/HTTP; spans go to <url>/v1/traces). Empty: tracing off, no SDK loaded.',
    parse: optionalUrl,
  },
  otelServiceName: {
    env: 'OTEL_SERVICE_NAME',
    default: '',
    description: 'OpenTelemetry service.name of this process (default: sluice; service.instance.id is SLUICE_INSTANCE_ID or host-pid).',
    parse: optionalText,
  },
  instanceId: {
    env: 'SLUICE_INSTANCE_ID',
    default: '',
    description: 'Name of this process in logs (default: host-pid).',
    parse: optionalText,
  },
} satisfies Record<string, OptionSpec<unknown>>;

type Options = typeof OPTIONS;
export type SluiceConfig = { readonly [K in keyof Options]: ReturnType<Options[K]['parse']> };

/**
 * Reads every option from `env` (falling back to defaults), validating each, and
 * reports all bad options at once so a misconfigured deploy is fixed in one go.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Record<keyof Options, string>> = {}): SluiceConfig {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, spec] of Object.entries(OPTIONS) as [keyof Options, OptionSpec<unknown>][]) {
    const raw = overrides[key] ?? env[spec.env] ?? spec.default;
    try {
      out[key] = spec.parse(raw, spec.env);
    } catch (error) {
      problems.push(error instanceof Error ? error.message : String(error));
    }
  }
  if (problems.length === 0) problems.push(...securityProblems(out as SluiceConfig));
  if (problems.length === 1) throw new ConfigError(problems[0]!.split(':')[0]!, problems[0]!.split(': ').slice(1).join(': '));
  if (problems.length > 1) throw new ConfigError('configuration', `${problems.length} invalid options:\n  ${problems.join('\n  ')}`);
  return Object.freeze(out) as SluiceConfig;
}

/** Options that are valid alone but not together (a mechanism without credentials, a key without a certificate, ...). */
function securityProblems(config: SluiceConfig): string[] {
  const problems: string[] = [];
  const sasl = config.kafkaSecurityProtocol.startsWith('SASL_');
  const tls = config.kafkaSecurityProtocol.endsWith('SSL');
  const mechanism = config.kafkaSaslMechanism;
  if (sasl && mechanism === undefined) problems.push(`KAFKA_SASL_MECHANISM: required with KAFKA_SECURITY_PROTOCOL=${config.kafkaSecurityProtocol}`);
  if (!sasl && mechanism !== undefined) problems.push(`KAFKA_SASL_MECHANISM: set, but KAFKA_SECURITY_PROTOCOL=${config.kafkaSecurityProtocol} does not use SASL`);
  if (sasl && mechanism !== undefined && mechanism !== 'OAUTHBEARER') {
    if (config.kafkaSaslUsername === undefined) problems.push(`KAFKA_SASL_USERNAME: required with KAFKA_SASL_MECHANISM=${mechanism}`);
    const passwords = [config.kafkaSaslPassword, config.kafkaSaslPasswordFile].filter((p) => p !== undefined).length;
    if (passwords !== 1) problems.push(`KAFKA_SASL_PASSWORD: set exactly one of KAFKA_SASL_PASSWORD and KAFKA_SASL_PASSWORD_FILE with KAFKA_SASL_MECHANISM=${mechanism}`);
  }
  if (sasl && mechanism === 'OAUTHBEARER') {
    const sources = [config.kafkaSaslOauthbearerTokenFile, config.kafkaSaslOauthbearerTokenCommand].filter((p) => p !== undefined).length;
    if (sources !== 1) problems.push('KAFKA_SASL_OAUTHBEARER_TOKEN_FILE: set exactly one of KAFKA_SASL_OAUTHBEARER_TOKEN_FILE and KAFKA_SASL_OAUTHBEARER_TOKEN_COMMAND with OAUTHBEARER');
  }
  if (!tls && (config.kafkaSslCaLocation ?? config.kafkaSslCertificateLocation ?? config.kafkaSslKeyLocation) !== undefined) {
    problems.push(`KAFKA_SSL_CA_LOCATION: TLS files are set, but KAFKA_SECURITY_PROTOCOL=${config.kafkaSecurityProtocol} does not use TLS (SSL or SASL_SSL)`);
  }
  if ((config.kafkaSslCertificateLocation === undefined) !== (config.kafkaSslKeyLocation === undefined)) {
    problems.push('KAFKA_SSL_KEY_LOCATION: mutual TLS needs both KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION');
  }
  if (config.oidcJwksUrl !== undefined) {
    // Without both, a token any client of the same issuer obtained (another audience) would be accepted.
    if (config.oidcIssuer === undefined) problems.push('SLUICE_OIDC_ISSUER: required with SLUICE_OIDC_JWKS_URL (the `iss` accepted JWTs must carry)');
    if (config.oidcAudience === undefined) problems.push('SLUICE_OIDC_AUDIENCE: required with SLUICE_OIDC_JWKS_URL (the `aud` accepted JWTs must carry)');
    // Keys fetched over plain HTTP can be swapped on the way: anyone on the path could then sign tokens.
    const jwks = new URL(config.oidcJwksUrl);
    if (jwks.protocol !== 'https:' && !isLoopback(jwks.hostname)) problems.push(`SLUICE_OIDC_JWKS_URL: must be https (plain http only to a loopback address), got ${jwks.origin}`);
  }
  return problems;
}

/** The bootstrap servers to use: the configured cluster, or the local broker. */
export function bootstrapServers(config: SluiceConfig): string[] {
  return config.kafkaBrokers ?? [`${config.kafkaHost}:${config.kafkaPort}`];
}
