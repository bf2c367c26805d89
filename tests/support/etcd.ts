import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../../core/logger.ts';
import { hasEtcd, startLocalEtcd, stopLocalEtcd } from '../../discovery/local-etcd.ts';
import { freePort } from './processes.ts';

/** A throwaway etcd for one test file, started by the same code as `sluice etcd up`. */

export { hasEtcd };

export interface TestEtcd {
  endpoint: string;
  stop(): Promise<void>;
}

export async function startTestEtcd(log: Logger): Promise<TestEtcd> {
  const dataDir = mkdtempSync(join(tmpdir(), 'sluice-etcd-'));
  const etcd = await startLocalEtcd({ host: '127.0.0.1', clientPort: await freePort(), peerPort: await freePort(), dataDir }, log);
  return {
    endpoint: etcd.endpoints[0]!,
    async stop() {
      await stopLocalEtcd(dataDir, log);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
