import type { Command } from 'commander';
import { createLogger } from '../../core/logger.ts';
import { RegistryClient } from '../../core/registry-client.ts';
import { findBridge, startBridge } from '../../integrations/rabbitmq/bridge.ts';
import { loadTopology } from '../../topology/load.ts';
import { closeOnSignal, type Service } from '../lifecycle.ts';
import { configFrom, discoveryRequested } from '../program.ts';
import { discoveryService } from '../services.ts';
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
      const services: Service[] = [];
      const { discovery, service } = await discoveryService(config, log, discoveryRequested(command));
      if (service) services.push(service);
      try {
        const bridge = await startBridge({ config, logger: log, topology, spec, registry: new RegistryClient(config.registryUrl) });
        services.push({ name: `bridge ${name}`, close: () => bridge.stop().then(() => log.info({ stats: bridge.stats() }, 'bridge stopped')) });
        if (discovery) {
          const registration = await discovery.registry.register(describeInstance({ kind: 'bridge', name, address: hostname(), port: 0 }));
          services.push({ name: 'registration', close: () => registration.deregister() });
        }
      } catch (error) {
        for (const s of services.reverse()) await s.close();
        throw error;
      }
      process.exitCode = await closeOnSignal(services, log, config.shutdownTimeoutMs);
    });
}
