import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdServiceRegistry } from '../../discovery/etcd.ts';
import { describeInstance } from '../../discovery/open.ts';
import type { ServiceInstance } from '../../discovery/registry.ts';
import { hasEtcd, startTestEtcd, type TestEtcd } from '../support/etcd.ts';
import { freePort, runSluice, waitForOk } from '../support/processes.ts';
import { brokers, testConfig, testLogger, uniqueName } from '../support/platform.ts';
import { PROJECT_ROOT } from '../../core/config.ts';

/**
 * Service discovery on a real etcd (Debian's etcd-server; skipped without it:
 * apt-get install etcd-server etcd-client).
 */

describe.skipIf(!hasEtcd())('service discovery on etcd', () => {
  let etcd: TestEtcd;
  const log = testLogger(testConfig(), 'discovery-test');

  beforeAll(async () => {
    etcd = await startTestEtcd(log);
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  const registryFor = (prefix: string, ttlS = 2) => new EtcdServiceRegistry({ endpoints: [etcd.endpoint], prefix, ttlS, logger: log });

  it('registers with a lease kept alive past its TTL, lists by kind, and deregisters at once', async () => {
    const prefix = `/${uniqueName('sluice-test')}/`;
    const registry = registryFor(prefix);
    const a = await registry.register(describeInstance({ kind: 'ingress', name: 'ingress', address: '127.0.0.1', port: 18080, healthPath: '/readyz', replica: 0 }));
    await registry.register(describeInstance({ kind: 'registry', name: 'registry', address: '127.0.0.1', port: 18081, healthPath: '/subjects' }));
    // Three TTLs: only keep-alives keep the entries there.
    await new Promise((r) => setTimeout(r, 6000));
    const listed = await registry.list();
    expect(listed.map((i) => i.kind)).toEqual(['ingress', 'registry']);
    expect(listed[0]).toMatchObject({ address: '127.0.0.1', port: 18080, healthUrl: 'http://127.0.0.1:18080/readyz', version: expect.any(String) });
    expect((await registry.list('ingress')).map((i) => i.id)).toEqual([a.instance.id]);
    await a.deregister();
    expect((await registry.list()).map((i) => i.kind)).toEqual(['registry']);
    await registry.close();
    expect(await registry.list()).toEqual([]);
  }, 20_000);

  it('a `sluice registry` process registers itself, `sluice services` lists it, and after SIGKILL it disappears when its lease expires', async () => {
    const prefix = `/${uniqueName('sluice-test')}/`;
    const port = await freePort();
    const env = {
      KAFKA_BROKERS: brokers().join(','),
      SLUICE_ETCD: etcd.endpoint,
      SLUICE_DISCOVERY_PREFIX: prefix,
      SLUICE_DISCOVERY_TTL_S: '3',
      SLUICE_REGISTRY_PORT: String(port),
      SLUICE_REGISTRY_TOPIC: uniqueName('_schemas_test'),
      SLUICE_LOG_LEVEL: 'warn',
    };
    const proc = runSluice(['registry'], env);
    try {
      await waitForOk(`http://127.0.0.1:${port}/subjects`, proc);
      const registry = registryFor(prefix);
      await expect.poll(async () => (await registry.list('registry')).length, { timeout: 10_000 }).toBe(1);

      const cli = spawnSync(process.execPath, [`${PROJECT_ROOT}/bin/sluice.js`, 'services', '--json'], { env: { ...process.env, ...env }, encoding: 'utf8' });
      expect(cli.status, cli.stderr).toBe(0);
      const listed = JSON.parse(cli.stdout) as ServiceInstance[];
      expect(listed).toEqual([expect.objectContaining({ kind: 'registry', port, pid: proc.child.pid, healthUrl: `http://127.0.0.1:${port}/subjects` })]);
      const table = spawnSync(process.execPath, [`${PROJECT_ROOT}/bin/sluice.js`, 'services'], { env: { ...process.env, ...env }, encoding: 'utf8' });
      expect(table.stdout).toMatch(/^KIND\s+NAME\s+ADDRESS/);
      expect(table.stdout).toContain(`127.0.0.1:${port}`);

      const killedAt = Date.now();
      proc.child.kill('SIGKILL');
      await proc.exited;
      await expect.poll(async () => (await registry.list('registry')).length, { timeout: 10_000, interval: 200 }).toBe(0);
      const goneAfterMs = Date.now() - killedAt;
      log.warn({ goneAfterMs, ttlS: 3 }, 'SIGKILLed instance left discovery');
      expect(goneAfterMs).toBeLessThan(8000);
    } finally {
      proc.child.kill('SIGKILL');
    }
  }, 60_000);
});
