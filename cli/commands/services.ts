import type { Command } from 'commander';
import { createLogger } from '../../core/logger.ts';
import { stringifyJson } from '../../core/json.ts';
import { EtcdServiceRegistry } from '../../discovery/etcd.ts';
import { formatInstances } from '../../discovery/format.ts';
import { etcdHealthy, localEtcdOptions, startLocalEtcd, stopLocalEtcd } from '../../discovery/local-etcd.ts';
import type { ServiceKind } from '../../discovery/registry.ts';
import { configFrom } from '../flags.ts';

/** `sluice services` (live instances in discovery) and `sluice etcd up|down` (the local etcd). */

export function register(program: Command): void {
  program
    .command('services')
    .description('list the live instances registered in service discovery (SLUICE_ETCD, or the local etcd)')
    .option('--kind <kind>', 'only ingress, registry, worker or bridge instances')
    .option('--json', 'print the instances as JSON')
    .action(async (flags: { kind?: ServiceKind; json?: boolean }, command: Command) => {
      const explicitLevel = command.optsWithGlobals<{ logLevel?: string }>().logLevel;
      const config = configFrom(command, explicitLevel === undefined ? { logLevel: 'warn' } : {});
      const log = createLogger(config, 'services');
      const endpoints = config.etcd ?? [`http://127.0.0.1:${config.etcdPort}`];
      const registry = new EtcdServiceRegistry({ endpoints, prefix: config.discoveryPrefix, ttlS: config.discoveryTtlS, logger: log });
      const instances = await registry.list(flags.kind);
      process.stdout.write(flags.json ? `${stringifyJson(instances, 2)}\n` : formatInstances(instances));
    });

  const etcd = program.command('etcd').description("the local etcd for service discovery (Debian's etcd-server), data under data/etcd");
  etcd
    .command('up')
    .description('start the local etcd and return once it is healthy')
    .action(async (_flags: object, command: Command) => {
      const config = configFrom(command);
      const log = createLogger(config, 'etcd');
      if (config.etcd) {
        log.info({ etcd: config.etcd, healthy: await etcdHealthy(config.etcd[0]!) }, 'SLUICE_ETCD is set: using that cluster, starting nothing');
        return;
      }
      const started = await startLocalEtcd(localEtcdOptions(config), log);
      log.info({ endpoints: started.endpoints, pid: started.pid }, started.started ? 'etcd started' : 'etcd was already running');
    });
  etcd
    .command('down')
    .description('stop the local etcd')
    .action(async (_flags: object, command: Command) => {
      const config = configFrom(command);
      const log = createLogger(config, 'etcd');
      if (!(await stopLocalEtcd(localEtcdOptions(config).dataDir, log))) log.info('no local etcd was running');
    });
}
