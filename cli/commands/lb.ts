import { resolve } from 'node:path';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { createLogger } from '../../core/logger.ts';
import { openDiscovery } from '../../discovery/open.ts';
import { checkExposure } from '../../access/http.ts';
import { backendsFrom, warnSkipped } from '../../lb/backends.ts';
import { startLbController } from '../../lb/controller.ts';
import { haproxyConfig } from '../../lb/haproxy-config.ts';
import { nginxConfig } from '../../lb/nginx-config.ts';
import { closeOnSignal } from '../lifecycle.ts';
import { configFrom } from '../flags.ts';

/** `sluice lb`: HAProxy in front of the ingress instances found in discovery. */

function portNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port from 0 to 65535');
  return n;
}

interface LbFlags {
  port?: number;
  host?: string;
  dir?: string;
  nginx?: string;
  print?: 'haproxy' | 'nginx';
  pollMs: number;
}

export function register(program: Command): void {
  program
    .command('lb')
    .description('run HAProxy in front of the ingress instances registered in discovery, reloading it as they come and go')
    .option('--port <port>', 'port HAProxy listens on (default SLUICE_LB_PORT)', portNumber)
    .option('--host <host>', 'address HAProxy listens on (default SLUICE_LB_HOST)')
    .option('--dir <dir>', 'where haproxy.cfg is written (default <SLUICE_DATA_DIR>/lb)')
    .option('--nginx <file>', 'also write (and keep updated) an NGINX include for the same instances')
    .option('--print <kind>', 'print the haproxy or nginx configuration for the current instances and exit')
    .option('--poll-ms <ms>', 'how often discovery is polled for changes', portNumber, 1000)
    .action(async (flags: LbFlags, command: Command) => {
      const config = configFrom(command);
      // With --print the configuration is stdout, so the log (a skipped instance's warning) goes to stderr.
      const log = createLogger(config, 'lb', flags.print === undefined ? 1 : 2);
      const bindHost = flags.host ?? config.lbHost;
      // The ingress behind it is as exposed as the load balancer: the same guard as every other listener.
      if (flags.print === undefined) checkExposure(config, bindHost, 'lb', log);
      const discovery = await openDiscovery(config, log, true);
      if (!discovery) throw new InvalidArgumentError('discovery is required');
      const bind = { bindHost, bindPort: flags.port ?? config.lbPort, produceTimeoutMs: config.produceTimeoutMs };
      if (flags.print !== undefined) {
        try {
          const backends = backendsFrom(await discovery.registry.list('ingress'), warnSkipped(log));
          if (flags.print !== 'haproxy' && flags.print !== 'nginx') throw new InvalidArgumentError('--print takes haproxy or nginx');
          process.stdout.write(flags.print === 'haproxy' ? haproxyConfig({ ...bind, backends }) : nginxConfig({ ...bind, backends }));
        } finally {
          await discovery.close();
        }
        return;
      }
      let controller;
      try {
        controller = await startLbController({
          registry: discovery.registry,
          logger: log,
          ...bind,
          dir: flags.dir === undefined ? join(config.dataDir, 'lb') : resolve(flags.dir),
          ...(flags.nginx === undefined ? {} : { nginxFile: resolve(flags.nginx) }),
          pollIntervalMs: flags.pollMs,
        });
      } catch (error) {
        await discovery.close();
        throw error;
      }
      const lb = controller;
      void lb.exited.then(() => {
        // HAProxy gone means no load balancer: stop cleanly rather than pretend to run.
        process.exitCode = 1;
        process.kill(process.pid, 'SIGTERM');
      });
      log.info({ url: `http://${bind.bindHost}:${bind.bindPort}`, config: lb.configFile }, 'load balancer running; Ctrl-C stops it');
      const code = await closeOnSignal(
        [
          { name: 'discovery', close: () => discovery.close() },
          { name: 'haproxy', close: () => lb.close() },
        ],
        log,
        config.shutdownTimeoutMs,
      );
      process.exitCode = process.exitCode === 1 ? 1 : code;
    });
}
