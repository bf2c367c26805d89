import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from './logger.ts';
import { pollUntil } from './deadline.ts';

/**
 * Bookkeeping for the local servers Sluice starts detached (Kafka, etcd): a pid
 * file in the server's data dir, so a later command can find, reuse or stop it.
 */

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pid recorded in `file`, when that process is still running. */
export function livePid(file: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
}

export function recordPid(file: string, pid: number): void {
  writeFileSync(file, `${pid}\n`);
}

/**
 * SIGTERM (the server's clean shutdown), then SIGKILL if it outlives `timeoutMs`;
 * resolves once the process is gone. False when none was running.
 */
export async function stopDaemon(file: string, what: string, log: Logger, timeoutMs: number): Promise<boolean> {
  const pid = livePid(file);
  if (pid === undefined) {
    rmSync(file, { force: true });
    return false;
  }
  log.info({ pid }, `stopping local ${what}`);
  process.kill(pid, 'SIGTERM');
  if (!(await pollUntil(() => !isAlive(pid), Date.now() + timeoutMs, 100)) && isAlive(pid)) {
    log.warn({ pid, timeoutMs }, `${what} did not stop in time; killing it`);
    process.kill(pid, 'SIGKILL');
    while (isAlive(pid)) await sleep(50);
  }
  rmSync(file, { force: true });
  log.info({ pid }, `local ${what} stopped`);
  return true;
}
