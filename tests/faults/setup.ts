import { rmSync } from 'node:fs';
import type { TestProject } from 'vitest/node';
import { createLogger } from '../../core/logger.ts';
import { startLocalCluster, stopLocalCluster } from '../../broker/cluster.ts';
import { faultsClusterOptions, faultsConfig } from './cluster.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string[];
  }
}

/**
 * A fresh three-node KRaft cluster for the fault tests, on its own ports
 * (SLUICE_FAULTS_KAFKA_PORT, default 23092: nodes on 23092/23094/23096,
 * controllers one above each) and data dir (<SLUICE_DATA_DIR>/faults-cluster),
 * started with the code of `sluice kafka up --brokers 3`. Tests reach the nodes
 * through tests/faults/cluster.ts.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const config = faultsConfig();
  const options = faultsClusterOptions(config);
  const log = createLogger(config, 'faults-kafka');
  await stopLocalCluster(options.dataDir, log);
  rmSync(options.dataDir, { recursive: true, force: true });
  const cluster = await startLocalCluster(options, log);
  project.provide('kafkaBrokers', cluster.brokers);
  return async () => {
    await stopLocalCluster(options.dataDir, log);
    rmSync(options.dataDir, { recursive: true, force: true });
  };
}
