import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { LoadBalancerError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { pollUntil } from '../core/deadline.ts';

/**
 * HAProxy run in master-worker mode (`-W`) in the foreground as a child of
 * `sluice lb`: SIGUSR2 to the master reloads the configuration file: new
 * workers take over the listening socket while old ones finish their
 * connections, so no request is refused during a reload.
 */

export const HAPROXY_INSTALL_HINT = "Install Debian's haproxy (`apt-get install haproxy`).";

export function hasHaproxy(): boolean {
  const result = spawnSync('haproxy', ['-v'], { stdio: 'ignore' });
  return !result.error && result.status === 0;
}

/** Throws with HAProxy's own explanation when the file is not a valid configuration. */
export function checkHaproxyConfig(file: string): void {
  const result = spawnSync('haproxy', ['-c', '-q', '-f', file], { encoding: 'utf8' });
  if (result.error) throw new LoadBalancerError(`cannot run haproxy: ${result.error.message}. ${HAPROXY_INSTALL_HINT}`, result.error);
  if (result.status !== 0) throw new LoadBalancerError(`HAProxy rejects ${file}:\n${(result.stdout + result.stderr).trim().slice(-4000)}`);
}

async function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(500);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

export class HaproxyProcess {
  readonly #child: ChildProcess;
  readonly #configFile: string;
  readonly exited: Promise<number | null>;
  #exitCode: number | null | undefined;
  #stopping = false;

  private constructor(child: ChildProcess, configFile: string, log: Logger) {
    this.#child = child;
    this.#configFile = configFile;
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.#exitCode = code;
        if (!this.#stopping) log.error({ code, signal }, 'HAProxy exited unexpectedly');
        resolve(code);
      }),
    );
    const relay = (data: Buffer) => {
      for (const line of data.toString().split('\n')) if (line.trim()) log.warn({ haproxy: line.trim() }, 'haproxy');
    };
    child.stdout?.on('data', relay);
    child.stderr?.on('data', relay);
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  static async start(configFile: string, bind: { host: string; port: number }, log: Logger, timeoutMs = 10_000): Promise<HaproxyProcess> {
    checkHaproxyConfig(configFile);
    const child = spawn('haproxy', ['-W', '-db', '-f', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    const haproxy = new HaproxyProcess(child, configFile, log);
    const listening = async () => {
      if (haproxy.#exitCode !== undefined) throw new LoadBalancerError(`HAProxy exited with code ${haproxy.#exitCode} while starting`);
      return accepts(bind.host, bind.port);
    };
    if (await pollUntil(listening, Date.now() + timeoutMs, 100)) {
      log.info({ pid: child.pid, bind: `${bind.host}:${bind.port}`, config: configFile }, 'HAProxy is listening');
      return haproxy;
    }
    await haproxy.stop();
    throw new LoadBalancerError(`HAProxy did not listen on ${bind.host}:${bind.port} within ${timeoutMs} ms`);
  }

  /** Re-reads the configuration file (checked first: a bad file never reaches the running HAProxy). */
  reload(): void {
    checkHaproxyConfig(this.#configFile);
    if (this.#exitCode !== undefined) throw new LoadBalancerError('HAProxy is not running; cannot reload');
    this.#child.kill('SIGUSR2');
  }

  /** Soft stop (SIGUSR1): stop listening, finish open requests; SIGKILL after `timeoutMs`. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.#exitCode !== undefined) return;
    this.#stopping = true;
    this.#child.kill('SIGUSR1');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }
}
