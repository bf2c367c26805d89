import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it, vi } from 'vitest';
import { loadConfig } from '../../core/config.ts';
import { LocalKafkaError } from '../../core/errors.ts';
import { createLogger } from '../../core/logger.ts';
import { brokerAnswers, ensureKafkaJars, localKafkaOptions, runningPid, startLocalKafka, stopLocalKafka, type LocalKafkaOptions } from '../../broker/broker.ts';
import { localClusterOptions, runningCluster, startLocalCluster, stopLocalCluster, type LocalCluster } from '../../broker/cluster.ts';
import { kafkaMajor } from '../../broker/properties.ts';
import { fetchMetadata } from '../../broker/probe.ts';
import { createTopic, runKafkaTool } from '../../broker/tools.ts';
import { kcatReadAll } from '../support/kcat.ts';
import { freePort } from '../support/processes.ts';

const log = createLogger({ logLevel: 'warn', logFormat: 'json', instanceId: 'test' }, 'local-kafka-test');
/** The release under test: the default (4.x), or SLUICE_KAFKA_VERSION for a run against 3.9. */
const version = loadConfig(process.env).kafkaVersion;
const libs = (): string => ensureKafkaJars({ version, cacheDir: loadConfig(process.env).kafkaCacheDir }, log);

/**
 * kcat produce of `lines` (one record each); throws with kcat's output when a record was not
 * delivered. Connection errors to a killed node are expected noise while librdkafka retries.
 */
function kcatProduce(args: string[], topic: string, lines: string[]): void {
  const result = spawnSync('kcat', ['-P', '-t', topic, '-X', 'request.required.acks=all', ...args], { input: lines.join('\n') + '\n', encoding: 'utf8', timeout: 30_000 });
  if (result.status !== 0 || /delivery failed|failed to deliver/i.test(result.stderr)) throw new Error(`kcat produce failed (${result.status}): ${result.stderr}`);
}

function kcatConsume(args: string[], topic: string): string[] {
  const result = spawnSync('kcat', ['-C', '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%s\n', ...args], { encoding: 'utf8', timeout: 30_000 });
  if (result.status !== 0) throw new Error(`kcat consume failed (${result.status}): ${result.stderr}`);
  return result.stdout.split('\n').filter(Boolean);
}

/**
 * A base port whose +0, +2, +4 (clients) and +1, +3, +5 (controllers) are free, for a 3-node
 * cluster. Below Linux's ephemeral range (32768+), so no outgoing connection takes one of them
 * between this check and the JVMs binding them.
 */
async function freePortBlock(size: number): Promise<number> {
  const free = (port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 21_000 + 2 * Math.floor(Math.random() * 5_000);
    const ports = Array.from({ length: size }, (_, i) => base + i);
    if ((await Promise.all(ports.map(free))).every(Boolean)) return base;
  }
  throw new Error('no free port block');
}

describe('the embedded broker (sluice kafka up / kafka down)', () => {
  const dataRoot = mkdtempSync(join(tmpdir(), 'sluice-kafka-'));
  let options: LocalKafkaOptions;

  afterAll(async () => {
    if (options) await stopLocalKafka(options.dataDir, log);
    rmSync(dataRoot, { recursive: true, force: true });
  });

  // Two broker starts and a kafka-topics run: ~20 s on an idle 2-core box, more when it is shared.
  it('runs Kafka 4.x by default, on its own ports, keeps data across a restart, and stops cleanly', { timeout: 180_000 }, async () => {
    const config = loadConfig({}, { dataDir: dataRoot, kafkaPort: String(await freePort()), kafkaControllerPort: String(await freePort()), kafkaHeap: '384m', kafkaVersion: version });
    expect(kafkaMajor(loadConfig({}).kafkaVersion)).toBeGreaterThanOrEqual(4);
    options = localKafkaOptions(config);
    const first = await startLocalKafka(options, log);
    expect(first.started).toBe(true);
    expect(await brokerAnswers(first.brokers)).toBe(true);
    // The broker itself says which release it runs (AppInfoParser, kept at INFO; logged just after it starts serving).
    await vi.waitFor(() => expect(readFileSync(join(options.dataDir, 'server.log'), 'utf8')).toContain(`Kafka version: ${config.kafkaVersion}`), { timeout: 10_000 });

    // A second start finds it running and starts nothing.
    const again = await startLocalKafka(options, log);
    expect(again).toMatchObject({ started: false, pid: first.pid });

    await createTopic(libs(), first.brokers[0]!, 'survives', { partitions: 1, replicationFactor: 1 });
    kcatProduce(['-b', first.brokers[0]!], 'survives', ['kept across restarts']);

    expect(await stopLocalKafka(options.dataDir, log)).toBe(true);
    expect(runningPid(options.dataDir)).toBeUndefined();
    expect(await brokerAnswers(first.brokers, 500)).toBe(false);

    const second = await startLocalKafka(options, log);
    expect(second.started).toBe(true);
    expect(kcatReadAll(second.brokers, 'survives').map((r) => r.value?.toString())).toEqual(['kept across restarts']);
  });

  it('says what to install when Java or Maven is missing', () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      const cold = { ...localKafkaOptions(loadConfig({})), cacheDir: join(dataRoot, 'empty-cache') };
      expect(() => ensureKafkaJars(cold, log)).toThrowError(LocalKafkaError);
      expect(() => ensureKafkaJars(cold, log)).toThrowError(/`java` was not found.*Install Java 17.*or set KAFKA_BROKERS/);
    } finally {
      process.env.PATH = path;
    }
  });
});

describe.runIf(inject('kafkaSecure'))("the test broker's SASL_SSL listener", () => {
  const secure = inject('kafkaSecure')!;
  const plaintext = inject('kafkaBrokers');
  const sasl = (mechanism: string, password = secure.password): string[] => [
    '-b',
    secure.brokers.join(','),
    '-X',
    'security.protocol=SASL_SSL',
    '-X',
    `sasl.mechanisms=${mechanism}`,
    '-X',
    `sasl.username=${secure.username}`,
    '-X',
    `sasl.password=${password}`,
    '-X',
    `ssl.ca.location=${secure.caFile}`,
  ];

  it('produces and consumes over TLS with SASL PLAIN and SCRAM-SHA-512, beside the PLAINTEXT listener', { timeout: 120_000 }, async () => {
    await createTopic(libs(), plaintext[0]!, 'secured', { partitions: 1, replicationFactor: 1 });
    kcatProduce(sasl('PLAIN'), 'secured', ['over sasl_ssl']);
    expect(kcatConsume(sasl('PLAIN'), 'secured')).toEqual(['over sasl_ssl']);
    // The same record through the PLAINTEXT listener: one broker serves both.
    expect(kcatConsume(['-b', plaintext.join(',')], 'secured')).toEqual(['over sasl_ssl']);

    // SCRAM through Kafka's own consumer: Debian's librdkafka (2.0) sends a SCRAM proof Kafka 4 rejects (fixed in librdkafka 2.6.1).
    const clientConfig = join(mkdtempSync(join(tmpdir(), 'sluice-scram-')), 'client.properties');
    writeFileSync(
      clientConfig,
      [
        'security.protocol=SASL_SSL',
        'sasl.mechanism=SCRAM-SHA-512',
        `sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="${secure.username}" password="${secure.password}";`,
        'ssl.truststore.type=PEM',
        `ssl.truststore.location=${secure.caFile}`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const consumed = await runKafkaTool(libs(), 'org.apache.kafka.tools.consumer.ConsoleConsumer', [
      '--bootstrap-server',
      secure.brokers[0]!,
      // Kafka 4.2 renamed --consumer.config (still accepted, with a warning); older releases know only the old name.
      /^(4\.([2-9]|\d\d)|[5-9])\./.test(version) ? '--command-config' : '--consumer.config',
      clientConfig,
      '--topic',
      'secured',
      '--from-beginning',
      '--max-messages',
      '1',
      '--timeout-ms',
      '30000',
    ]);
    expect(consumed.stdout.trim()).toBe('over sasl_ssl');
    rmSync(join(clientConfig, '..'), { recursive: true, force: true });
  });

  it('refuses a wrong password within seconds', () => {
    for (const mechanism of ['PLAIN', 'SCRAM-SHA-512']) {
      const result = spawnSync('kcat', ['-L', '-m', '3', ...sasl(mechanism, 'not-the-password')], { encoding: 'utf8', timeout: 30_000 });
      expect(result.stdout).not.toMatch(/brokers:/);
      // Kafka names the mechanism for SCRAM; for PLAIN it says "Invalid username or password".
      expect(result.stderr).toMatch(mechanism === 'PLAIN' ? /Authentication failed: Invalid username or password/ : /Authentication failed.*invalid credentials with SASL mechanism SCRAM-SHA-512/);
      // librdkafka reports how long the refused handshake took: the broker answers at once, not after a timeout.
      const took = Number(/after (\d+)ms in state AUTH_REQ/.exec(result.stderr)?.[1]);
      expect(took, mechanism).toBeLessThan(5_000);
    }
  });
});

// Fault test on a local three-node cluster (three JVMs): it may move to `npm run test:faults`.
describe('[3-node cluster] sluice kafka up --brokers 3', () => {
  const dataRoot = mkdtempSync(join(tmpdir(), 'sluice-cluster-'));
  let cluster: LocalCluster | undefined;

  afterAll(async () => {
    await stopLocalCluster(join(dataRoot, 'kafka-cluster'), log);
    rmSync(dataRoot, { recursive: true, force: true });
  });

  it('keeps acks=all writes going with one node SIGKILLed, takes it back into the ISR, and stops every node', { timeout: 240_000 }, async () => {
    const base = await freePortBlock(6);
    const config = loadConfig({}, { dataDir: dataRoot, kafkaPort: String(base), kafkaControllerPort: String(base + 1), kafkaVersion: version });
    cluster = await startLocalCluster(localClusterOptions(config, 3), log);
    expect(cluster.brokers).toEqual([`127.0.0.1:${base}`, `127.0.0.1:${base + 2}`, `127.0.0.1:${base + 4}`]);
    expect(runningCluster(join(dataRoot, 'kafka-cluster'))).toEqual(cluster.brokers);
    const controller = await cluster.controllerId();
    expect([1, 2, 3]).toContain(controller);

    await createTopic(libs(), cluster.brokers[0]!, 'replicated', { partitions: 3, replicationFactor: 3, configs: { 'min.insync.replicas': '2' } });
    kcatProduce(['-b', cluster.brokers.join(',')], 'replicated', ['a', 'b', 'c']);

    // A crash of a node that is not the active controller (the controller's own loss is a later fault test).
    const victim = cluster.nodes.find((n) => n.id !== controller)!;
    await victim.kill('SIGKILL');
    expect(victim.pid()).toBeUndefined();
    const survivors = cluster.brokers.filter((b) => b !== victim.address);
    kcatProduce(['-b', survivors.join(',')], 'replicated', ['d', 'e', 'f']);
    // The victim leads no partition any more once the controller has fenced it (broker session timeout).
    await vi.waitFor(
      async () => {
        const partitions = (await fetchMetadata(survivors[0]!, ['replicated'])).topics[0]?.partitions ?? [];
        expect(partitions.every((p) => p.leader >= 0 && p.leader !== victim.id && !p.isr.includes(victim.id))).toBe(true);
      },
      { timeout: 30_000, interval: 500 },
    );
    // Every acknowledged record is there; right after a leader change the new leader's high watermark may still
    // trail its log (it advances once the other follower has fetched), and kcat -e stops at the high watermark.
    await vi.waitFor(() => expect(kcatConsume(['-b', survivors.join(',')], 'replicated').sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'f']), { timeout: 30_000, interval: 500 });

    await victim.start();
    await cluster.waitForIsr('replicated', victim.id);
    // The restarted node's own metadata cache catches up with the controller a moment after the ISR does.
    await vi.waitFor(
      async () => {
        const metadata = await fetchMetadata(victim.address, ['replicated']);
        expect(metadata.topics[0]?.partitions.map((p) => p.isr.length)).toEqual([3, 3, 3]);
      },
      { timeout: 30_000, interval: 500 },
    );
    // kcat, an independent client, sees the same ISR.
    const listing = spawnSync('kcat', ['-L', '-b', cluster.brokers[0]!, '-t', 'replicated'], { encoding: 'utf8' }).stdout;
    expect(listing.match(/isrs: \d,\d,\d/g)).toHaveLength(3);

    // What `sluice kafka down` does: every node stops.
    expect(await stopLocalCluster(join(dataRoot, 'kafka-cluster'), log)).toBe(true);
    expect(cluster.nodes.map((n) => n.pid())).toEqual([undefined, undefined, undefined]);
    expect(runningCluster(join(dataRoot, 'kafka-cluster'))).toBeUndefined();
  });
});
