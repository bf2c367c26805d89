import { loadConfig } from '../../core/config.ts';
import { createLogger } from '../../core/logger.ts';
import { RegistryClient } from '../../core/registry-client.ts';
import { startIngress } from '../../producers/server.ts';
import { orderTopology } from './order-topology.ts';

/**
 * An ingress in a process of its own, for the Idempotency-Key crash test:
 * `node idempotent-ingress.ts <topic> <registry-url> [crash]`. With `crash` it
 * SIGKILLs itself after a keyed request's events were acknowledged and before the
 * response is sent. Prints its URL on the first line of stdout.
 */
const [topic, registryUrl, crash] = process.argv.slice(2);
const config = loadConfig(process.env);
const ingress = await startIngress({
  config,
  logger: createLogger(config, 'ingress'),
  topology: orderTopology(topic!, 3),
  registry: new RegistryClient(registryUrl!),
  port: 0,
  afterIdempotentWrite: crash === 'crash' ? () => process.kill(process.pid, 'SIGKILL') : undefined,
});
process.stdout.write(`${ingress.url}\n`);
process.once('SIGTERM', () => void ingress.close().then(() => process.exit(0)));
