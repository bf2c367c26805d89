import type { SluiceConfig } from '../../core/config.ts';
import { SluiceError } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import type { RegistryClient } from '../../core/registry-client.ts';
import { topicByName, type BridgeSpec, type Topology } from '../../topology/model.ts';
import { startAmqpToKafka } from './amqp-to-kafka.ts';
import { startKafkaToAmqp } from './kafka-to-amqp.ts';
import type { RunningBridge } from './running.ts';

/** Starts one declared bridge, whichever its direction. */

export function findBridge(topology: Topology, name: string): BridgeSpec {
  const bridges = topology.bridges ?? [];
  const spec = bridges.find((b) => b.name === name);
  if (!spec) throw new SluiceError('SLUICE_UNKNOWN_BRIDGE', `no bridge "${name}" in ${topology.file} (bridges: ${bridges.map((b) => b.name).join(', ') || 'none'})`);
  return spec;
}

export async function startBridge(options: { config: SluiceConfig; logger: Logger; topology: Topology; spec: BridgeSpec; registry: RegistryClient }): Promise<RunningBridge> {
  const { spec } = options;
  const logger = options.logger.child({ bridge: spec.name });
  if (spec.direction === 'kafka-to-amqp') return startKafkaToAmqp({ config: options.config, logger, spec, registry: options.registry });
  const topic = topicByName(options.topology, spec.topic);
  if (!topic) throw new SluiceError('SLUICE_TOPOLOGY_INVALID', `bridge ${spec.name}: topic ${spec.topic} is not declared`);
  return startAmqpToKafka({ config: options.config, logger, spec, topic, registry: options.registry });
}
