import type { Command } from 'commander';
import { createLogger } from '../../core/logger.ts';
import { RegistryClient } from '../../core/registry-client.ts';
import { findBridge, startBridge } from '../../integrations/rabbitmq/bridge.ts';
import { loadTopology } from '../../topology/load.ts';
import { configFrom, discoveryRequested } from '../flags.ts';
import { serve } from '../serve.ts';
import { discoveryStep } from '../services.ts';
import { describeInstance } from '../../discovery/open.ts';
import { hostname } from 'node:os';

/** `sluice bridge <name>`: one RabbitMQ bridge of the topology, until Ctrl-C. */

export function register(program: Command): void {
  program
    .command('bridge <name>')
    .description('run one RabbitMQ bridge of the topology (topic → exchange or queue → topic), reconnecting to either side with backoff')
    .action(async (name: string, _flags: object, command: Command) => {
      const config = configFrom(command);
      const log = createLogger(config, 'sluice');
      const topology = loadTopology(config.topologyFile);
      const spec = findBridge(topology, name);
      const discovery = discoveryStep(config, log, discoveryRequested(command));
      process.exitCode = await serve(config, log, [
        () => discovery.start(),
        async () => {
          const bridge = await startBridge({ config, logger: log, topology, spec, registry: new RegistryClient(config.registryUrl) });
          return { name: `bridge ${name}`, close: () => bridge.stop().then(() => log.info({ stats: bridge.stats() }, 'bridge stopped')) };
        },
        async () => {
          const registry = discovery.current()?.registry;
          if (!registry) return undefined;
          const registration = await registry.register(describeInstance({ kind: 'bridge', name, address: hostname(), port: 0 }));
          return { name: 'registration', close: () => registration.deregister() };
        },
      ]);
    });
}
