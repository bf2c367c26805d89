import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../core/logger.ts';
import type { ServiceRegistry } from '../discovery/registry.ts';
import { backendsFrom, backendsKey, warnSkipped, type Backend } from './backends.ts';
import { haproxyConfig } from './haproxy-config.ts';
import { HaproxyProcess } from './haproxy-process.ts';
import { nginxConfig } from './nginx-config.ts';

/**
 * Keeps HAProxy (and optionally an NGINX include) in step with the ingress
 * instances in discovery: polls the registry, and on every change rewrites the
 * configuration and reloads HAProxy. Polling (default 1 s) is backend-neutral
 * and cheap; a lease expiry is seen within one interval of happening.
 */

export interface LbControllerOptions {
  registry: ServiceRegistry;
  logger: Logger;
  bindHost: string;
  bindPort: number;
  /** Where haproxy.cfg is written. */
  dir: string;
  nginxFile?: string;
  pollIntervalMs?: number;
  checkIntervalMs?: number;
  produceTimeoutMs?: number;
}

export interface LbController {
  haproxyPid: number | undefined;
  configFile: string;
  backends(): Backend[];
  /** Resolves when HAProxy exits on its own (it should not). */
  readonly exited: Promise<number | null>;
  close(): Promise<void>;
}

function writeAtomically(file: string, text: string): void {
  // HAProxy may re-read the file at any moment (a reload in flight): never let it see half a file.
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

export async function startLbController(options: LbControllerOptions): Promise<LbController> {
  const log = options.logger;
  mkdirSync(options.dir, { recursive: true });
  const configFile = join(options.dir, 'haproxy.cfg');
  const render = (backends: Backend[]) => {
    const common = { bindHost: options.bindHost, bindPort: options.bindPort, backends, ...(options.produceTimeoutMs === undefined ? {} : { produceTimeoutMs: options.produceTimeoutMs }) };
    writeAtomically(configFile, haproxyConfig({ ...common, ...(options.checkIntervalMs === undefined ? {} : { checkIntervalMs: options.checkIntervalMs }) }));
    if (options.nginxFile) writeAtomically(options.nginxFile, nginxConfig(common));
  };

  const skipped = warnSkipped(log);
  let current = backendsFrom(await options.registry.list('ingress'), skipped);
  let currentKey = backendsKey(current);
  render(current);
  const haproxy = await HaproxyProcess.start(configFile, { host: options.bindHost, port: options.bindPort }, log);
  log.info({ backends: current.map((b) => `${b.address}:${b.port}`) }, 'load balancer configured');

  let closed = false;
  let polling: Promise<void> = Promise.resolve();
  const poll = async () => {
    try {
      const next = backendsFrom(await options.registry.list('ingress'), skipped);
      const key = backendsKey(next);
      if (key === currentKey || closed) return;
      render(next);
      haproxy.reload();
      log.info({ backends: next.map((b) => `${b.address}:${b.port}`), previous: current.length }, 'ingress instances changed; HAProxy reloaded');
      current = next;
      currentKey = key;
    } catch (error) {
      // Discovery briefly unreachable: HAProxy keeps serving the last known servers, with health checks.
      log.warn({ err: error }, 'could not refresh the load balancer from discovery; keeping the current servers');
    }
  };
  const timer = setInterval(() => {
    polling = polling.then(poll);
  }, options.pollIntervalMs ?? 1000);

  return {
    get haproxyPid() {
      return haproxy.pid;
    },
    configFile,
    backends: () => current,
    exited: haproxy.exited,
    async close() {
      closed = true;
      clearInterval(timer);
      await polling;
      await haproxy.stop();
    },
  };
}
