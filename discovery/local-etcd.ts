import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SluiceConfig } from '../core/config.ts';
import { livePid, recordPid, stopDaemon } from '../core/daemon.ts';
import { LocalEtcdError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { pollUntil } from '../core/deadline.ts';

/**
 * A local single-member etcd for discovery, run like the local Kafka broker
 * (broker/broker.ts): Debian's `etcd` binary started detached with its data and
 * pid file under data/etcd, reused when already running, stopped with SIGTERM.
 */

export interface LocalEtcdOptions {
  host: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
}

export interface LocalEtcd {
  endpoints: string[];
  pid: number;
  started: boolean;
}

export function localEtcdOptions(config: SluiceConfig, dataSubdir = 'etcd'): LocalEtcdOptions {
  return { host: '127.0.0.1', clientPort: config.etcdPort, peerPort: config.etcdPeerPort, dataDir: join(config.dataDir, dataSubdir) };
}

export const ETCD_INSTALL_HINT = "Install Debian's etcd-server (`apt-get install etcd-server etcd-client`), or set SLUICE_ETCD to an existing cluster.";

export function hasEtcd(): boolean {
  const result = spawnSync('etcd', ['--version'], { stdio: 'ignore' });
  return !result.error && result.status === 0;
}

const pidFile = (dataDir: string): string => join(dataDir, 'etcd.pid');

export function runningEtcdPid(dataDir: string): number | undefined {
  return livePid(pidFile(dataDir));
}

export async function etcdHealthy(endpoint: string, timeoutMs = 1000): Promise<boolean> {
  try {
    const response = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await response.json()) as { health?: unknown };
    return response.ok && String(body.health) === 'true';
  } catch {
    return false;
  }
}

function tail(file: string, lines = 20): string {
  return existsSync(file) ? readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n') : '(no log)';
}

export async function startLocalEtcd(options: LocalEtcdOptions, log: Logger, startTimeoutMs = 30_000): Promise<LocalEtcd> {
  const client = `http://${options.host}:${options.clientPort}`;
  const peer = `http://${options.host}:${options.peerPort}`;
  const existing = runningEtcdPid(options.dataDir);
  if (existing !== undefined && (await etcdHealthy(client))) {
    log.info({ endpoint: client, pid: existing }, 'local etcd already running');
    return { endpoints: [client], pid: existing, started: false };
  }
  if (existing === undefined && (await etcdHealthy(client))) {
    throw new LocalEtcdError(`an etcd already answers on ${client} but was not started from ${options.dataDir}; stop it, or set SLUICE_ETCD=${client} to use it`);
  }
  if (!hasEtcd()) throw new LocalEtcdError(`\`etcd\` was not found, and local service discovery needs it. ${ETCD_INSTALL_HINT}`);
  mkdirSync(options.dataDir, { recursive: true });
  const logFile = join(options.dataDir, 'etcd.log');
  const out = openSync(logFile, 'a');
  const child = spawn(
    'etcd',
    [
      '--name=sluice',
      `--data-dir=${join(options.dataDir, 'member-data')}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=sluice=${peer}`,
      '--initial-cluster-state=new',
      // Discovery data is a few small keys; a small backend keeps the footprint down.
      '--quota-backend-bytes=268435456',
      '--log-level=warn',
    ],
    { detached: true, stdio: ['ignore', out, out] },
  );
  closeSync(out);
  if (child.pid === undefined) throw new LocalEtcdError('could not spawn etcd');
  const pid = child.pid;
  let exitCode: number | null | undefined;
  child.once('exit', (code) => (exitCode = code));
  child.unref();
  recordPid(pidFile(options.dataDir), pid);
  log.info({ pid, endpoint: client, dataDir: options.dataDir }, 'starting local etcd');
  const healthy = async () => {
    if (exitCode !== undefined) throw new LocalEtcdError(`etcd exited with code ${exitCode} while starting:\n${tail(logFile)}`);
    return etcdHealthy(client);
  };
  if (await pollUntil(healthy, Date.now() + startTimeoutMs, 100)) {
    log.info({ pid, endpoint: client }, 'local etcd is ready');
    return { endpoints: [client], pid, started: true };
  }
  process.kill(pid, 'SIGKILL');
  throw new LocalEtcdError(`etcd did not answer on ${client} within ${startTimeoutMs} ms:\n${tail(logFile)}`);
}

export function stopLocalEtcd(dataDir: string, log: Logger, timeoutMs = 15_000): Promise<boolean> {
  return stopDaemon(pidFile(dataDir), 'etcd', log, timeoutMs);
}
