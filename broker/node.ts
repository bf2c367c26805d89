import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive, livePid, recordPid, stopDaemon } from '../core/daemon.ts';
import { LocalKafkaError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { adoptArchive, cdsFlags } from './cds.ts';
import { loggingConfig, logDir, serverProperties, type NodeSpec } from './properties.ts';
import { registeredBrokers } from './probe.ts';
import { addScramArgs, type SaslUser } from './sasl.ts';
import { pollUntil } from '../core/deadline.ts';

/**
 * One local Kafka process (broker and controller in one JVM) in its own data
 * dir: configured, formatted on first use, started detached (it outlives this
 * process), and stopped or killed through its pid file. The single broker and
 * each node of a local cluster are one of these.
 */

export interface NodeRuntime {
  /** Where the resolved jars are (jars.ts). */
  libs: string;
  heap: string;
}

function tail(file: string, lines = 30): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

/** A KRaft cluster id as kafka-storage random-uuid makes it: 16 random bytes, base64url, never starting with "-" (it would read as a flag). */
export function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/**
 * Stops the node of `dataDir` with SIGTERM (a clean shutdown), waits for it to
 * exit, and keeps the class archive its first run wrote (cds.ts).
 */
export async function stopNode(dataDir: string, log: Logger, timeoutMs = 60_000): Promise<boolean> {
  const stopped = await stopDaemon(join(dataDir, 'kafka.pid'), 'Kafka', log, timeoutMs);
  adoptArchive(dataDir);
  return stopped;
}

export class KafkaNode {
  readonly spec: NodeSpec;
  private readonly runtime: NodeRuntime;
  private readonly log: Logger;
  /** Set when the process this object spawned has exited. */
  private exitCode: number | null | undefined;

  constructor(spec: NodeSpec, runtime: NodeRuntime, log: Logger) {
    this.spec = spec;
    this.runtime = runtime;
    this.log = log;
  }

  get id(): number {
    return this.spec.nodeId;
  }

  /** host:port of the PLAINTEXT listener. */
  get address(): string {
    return `${this.spec.host}:${this.spec.port}`;
  }

  private get pidFile(): string {
    return join(this.spec.dataDir, 'kafka.pid');
  }

  private get propertiesFile(): string {
    return join(this.spec.dataDir, 'server.properties');
  }

  /** The pid of this node's process, when it runs. */
  pid(): number | undefined {
    return livePid(this.pidFile);
  }

  private java(heap: string, main: string[], extra: string[] = []): string[] {
    return [
      ...extra,
      `-Xms${heap}`,
      `-Xmx${heap}`,
      '-XX:+UseG1GC',
      '-XX:MaxGCPauseMillis=20',
      '-XX:+ExitOnOutOfMemoryError',
      '-Djava.awt.headless=true',
      loggingConfig(this.spec.version, this.spec.dataDir).jvmFlag,
      '-cp',
      `${this.runtime.libs}/*`,
      ...main,
    ];
  }

  /** Writes this start's configuration files. */
  configure(): void {
    mkdirSync(logDir(this.spec.dataDir), { recursive: true });
    // 0600: with a SASL_SSL listener it holds the PLAIN user's password.
    writeFileSync(this.propertiesFile, serverProperties(this.spec), { mode: 0o600 });
    const logging = loggingConfig(this.spec.version, this.spec.dataDir);
    writeFileSync(logging.file, logging.content);
  }

  isFormatted(): boolean {
    return existsSync(join(logDir(this.spec.dataDir), 'meta.properties'));
  }

  /**
   * Formats KRaft storage with the static voter set of `controller.quorum.voters`
   * (no --standalone or --initial-controllers: those are for a dynamic quorum)
   * and the SCRAM user (which the caller records where the cluster keeps it).
   */
  format(clusterId: string, user: SaslUser): void {
    this.log.info({ dataDir: this.spec.dataDir, nodeId: this.id }, 'formatting KRaft storage');
    const args = this.java('256m', ['kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', this.propertiesFile, ...addScramArgs(user)]);
    const result = spawnSync('java', args, { encoding: 'utf8' });
    if (result.status !== 0) throw new LocalKafkaError(`formatting Kafka storage failed:\n${(result.stdout + result.stderr).trim().slice(-4000)}`);
  }

  /** Spawns the JVM detached and records its pid; `waitReady` says when it serves. */
  spawn(): number {
    const out = openSync(join(this.spec.dataDir, 'stdout.log'), 'a');
    const child = spawn('java', this.java(this.runtime.heap, ['kafka.Kafka', this.propertiesFile], cdsFlags(this.runtime.libs, this.spec.dataDir)), { detached: true, stdio: ['ignore', out, out] });
    closeSync(out);
    if (child.pid === undefined) throw new LocalKafkaError('could not spawn java');
    this.exitCode = undefined;
    child.once('exit', (code) => {
      this.exitCode = code;
    });
    child.unref();
    recordPid(this.pidFile, child.pid);
    this.log.info({ pid: child.pid, nodeId: this.id, version: this.spec.version, broker: this.address, dataDir: this.spec.dataDir }, 'starting local Kafka');
    return child.pid;
  }

  private failure(reason: string): LocalKafkaError {
    return new LocalKafkaError(
      `${reason}. Last lines of ${join(this.spec.dataDir, 'server.log')}:\n${tail(join(this.spec.dataDir, 'server.log'))}\n${tail(join(this.spec.dataDir, 'stdout.log'), 10)}`,
    );
  }

  /**
   * Resolves once this node answers metadata requests listing at least
   * `brokers` registered brokers (a node only answers once it has caught up
   * with the metadata and is unfenced).
   */
  async waitReady(brokers: number, deadline: number): Promise<void> {
    const ready = async () => {
      if (this.exitCode !== undefined) throw this.failure(`Kafka node ${this.id} exited with code ${this.exitCode} while starting`);
      return (await registeredBrokers(this.address, 1000)).length >= brokers;
    };
    if (await pollUntil(ready, deadline, 100)) return;
    const pid = this.pid();
    if (pid !== undefined) process.kill(pid, 'SIGKILL');
    throw this.failure(`Kafka did not answer on ${this.address} within the start timeout`);
  }

  /** Sends `signal` (SIGKILL for a crash, SIGSTOP for a freeze); resolves once a killed process is gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const pid = this.pid();
    if (pid === undefined) return;
    process.kill(pid, signal);
    if (signal === 'SIGKILL') while (isAlive(pid)) await sleep(20);
  }

  /** SIGTERM (a clean shutdown) and waits; false when it was not running. */
  stop(log: Logger = this.log, timeoutMs = 60_000): Promise<boolean> {
    return stopNode(this.spec.dataDir, log, timeoutMs);
  }
}
