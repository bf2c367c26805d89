import { spawn } from 'node:child_process';
import { LocalKafkaError } from '../core/errors.ts';

/**
 * Kafka's own command-line tools, run from the resolved jars (what
 * kafka-metadata-quorum.sh, kafka-topics.sh, ... run): the launcher's view of
 * the cluster that a Metadata request cannot give, such as the active
 * controller of the KRaft quorum.
 */

export interface ToolResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `main` with `args` on the jars in `libs`, without blocking the event loop; throws when it fails. */
export function runKafkaTool(libs: string, main: string, args: string[], timeoutMs = 60_000): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    // A small heap and no JIT tiers beyond C1: these tools live for a second or two.
    const child = spawn('java', ['-Xmx256m', '-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC', '-cp', `${libs}/*`, main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new LocalKafkaError(`could not run ${main}: ${error.message}`, error));
    });
    child.once('close', (status) => {
      clearTimeout(timer);
      if (status !== 0) reject(new LocalKafkaError(`${main} ${args.join(' ')} exited with ${status}:\n${(stdout + stderr).trim().slice(-2000)}`));
      else resolve({ status, stdout, stderr });
    });
  });
}

/** The node id of the active KRaft controller (the quorum leader), asked through `bootstrap`. */
export async function activeController(libs: string, bootstrap: string): Promise<number> {
  const { stdout } = await runKafkaTool(libs, 'org.apache.kafka.tools.MetadataQuorumCommand', ['--bootstrap-server', bootstrap, 'describe', '--status']);
  const leader = /^LeaderId:\s*(\d+)/m.exec(stdout);
  if (!leader) throw new LocalKafkaError(`kafka-metadata-quorum named no leader:\n${stdout.trim()}`);
  return Number(leader[1]);
}

export interface TopicSpec {
  partitions: number;
  replicationFactor: number;
  configs?: Record<string, string>;
}

/** kafka-topics --create: for tests and checks that must not go through a Kafka client library. */
export async function createTopic(libs: string, bootstrap: string, topic: string, spec: TopicSpec): Promise<void> {
  const configs = Object.entries(spec.configs ?? {}).flatMap(([key, value]) => ['--config', `${key}=${value}`]);
  await runKafkaTool(libs, 'org.apache.kafka.tools.TopicCommand', [
    '--bootstrap-server',
    bootstrap,
    '--create',
    '--topic',
    topic,
    '--partitions',
    String(spec.partitions),
    '--replication-factor',
    String(spec.replicationFactor),
    ...configs,
  ]);
}
