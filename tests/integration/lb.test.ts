import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../core/config.ts';
import { EtcdClient, EtcdServiceRegistry } from '../../discovery/etcd.ts';
import { hasHaproxy } from '../../lb/haproxy-process.ts';
import { startRegistry } from '../../registry/server.ts';
import { hasEtcd, startTestEtcd, type TestEtcd } from '../support/etcd.ts';
import { randomOrder } from '../support/orders.ts';
import { runCli } from '../support/cli.ts';
import { brokers, createTopics, testConfig, testLogger, uniqueName } from '../support/platform.ts';
import { freePort, runSluice, waitForOk, type SluiceProcess } from '../support/processes.ts';
import { collect } from '../support/workers.ts';

/**
 * Three ingress processes registered in etcd behind the real HAProxy that
 * `sluice lb` generates and runs; one replica is SIGKILLed while 1,000 events
 * are posted through HAProxy. Needs Debian's haproxy and etcd-server.
 */

const CLIENTS = 8;
const EVENTS = 1000;

describe.skipIf(!hasEtcd() || !hasHaproxy())('load-balanced ingress (HAProxy + etcd)', () => {
  const config = testConfig();
  const log = testLogger(config, 'lb-test');
  let etcd: TestEtcd;
  let closeRegistry: () => Promise<void>;
  const procs: SluiceProcess[] = [];

  beforeAll(async () => {
    etcd = await startTestEtcd(log);
  });
  afterAll(async () => {
    // SIGTERM, not SIGKILL: `sluice lb` stops its HAProxy on the way out; killed, it would orphan it.
    for (const p of procs) p.child.kill('SIGTERM');
    const stopped = Promise.all(procs.map((p) => p.exited));
    const timer = setTimeout(() => procs.forEach((p) => p.child.kill('SIGKILL')), 15_000);
    await stopped;
    clearTimeout(timer);
    await closeRegistry?.();
    await etcd?.stop();
  });

  // Skipped until 2026-12-06: in a full `npm test` run more requests than clients failed (11 UND_ERR_SOCKET for 8
  // clients). The extra ones came at HAProxy's reload (the killed replica's lease expiring while the slower run still
  // posted): the old worker closed its idle client connections under requests being sent on them.
  it(`every 2xx of ${EVENTS} events posted through HAProxy is on the topic once, with a replica SIGKILLed mid-stream`, async () => {
    const topic = uniqueName('lb.orders');
    await createTopics([{ topic, numPartitions: 3 }]);
    const server = await startRegistry({ config, logger: log, port: 0, topic: config.registryTopic });
    closeRegistry = () => server.close();
    const dir = mkdtempSync(join(tmpdir(), 'sluice-lb-'));
    const topologyFile = join(dir, 'lb.topology.yaml');
    writeFileSync(
      topologyFile,
      [
        `topics:`,
        `  - name: ${topic}`,
        `    partitions: 3`,
        `    valueSchema: ${PROJECT_ROOT}/schemas/OrderPlaced.avsc`,
        `routes:`,
        `  - path: /v1/orders`,
        `    topic: ${topic}`,
        `    key: orderId`,
        '',
      ].join('\n'),
    );
    const prefix = `/${uniqueName('sluice-lb')}/`;
    const env = {
      KAFKA_BROKERS: brokers().join(','),
      SLUICE_REGISTRY_URL: server.url,
      SLUICE_TOPOLOGY: topologyFile,
      SLUICE_ETCD: etcd.endpoint,
      SLUICE_DISCOVERY_PREFIX: prefix,
      SLUICE_DISCOVERY_TTL_S: '3',
      SLUICE_LOG_LEVEL: 'warn',
    };
    const ports = [await freePort(), await freePort(), await freePort()];
    const ingresses = ports.map((port) => runSluice(['ingress', '--no-apply'], { ...env, SLUICE_INGRESS_PORT: String(port) }));
    procs.push(...ingresses);
    await Promise.all(ports.map((port, i) => waitForOk(`http://127.0.0.1:${port}/readyz`, ingresses[i]!)));

    const lbPort = await freePort();
    const lb = runSluice(['lb', '--port', String(lbPort), '--dir', join(dir, 'lb'), '--nginx', join(dir, 'nginx.conf'), '--poll-ms', '500'], env);
    procs.push(lb);
    const discovery = new EtcdServiceRegistry({ endpoints: [etcd.endpoint], prefix, ttlS: 3, logger: log });
    await expect.poll(async () => (await discovery.list('ingress')).length, { timeout: 10_000 }).toBe(3);
    await waitForOk(`http://127.0.0.1:${lbPort}/readyz`, lb);

    const collector = await collect([topic]);
    const acknowledged: string[] = [];
    const retried = new Set<string>();
    const errors: Record<string, number> = {};
    let next = 0;
    let killed = false;
    let killedAt = 0;
    const failures: string[] = [];
    // HAProxy is reloaded without the killed replica once its lease expires (haproxy.cfg is rewritten just
    // before). Until then the clients slow down (100 ms between requests), so requests are in the air while
    // the old worker hands over, on any machine: a reload must fail none of them.
    const haproxyCfg = join(dir, 'lb', 'haproxy.cfg');
    let reloadedAt = 0;
    let postedAfterReload = 0;
    const post = async (): Promise<void> => {
      while (next < EVENTS) {
        const n = next++;
        if (n === Math.floor(EVENTS / 3) && !killed) {
          killed = true;
          killedAt = Date.now();
          ingresses[1]!.child.kill('SIGKILL');
        }
        if (killed && reloadedAt === 0) {
          if (readFileSync(haproxyCfg, 'utf8').includes(`:${ports[1]} check`)) await new Promise((r) => setTimeout(r, 100));
          else reloadedAt = Date.now();
        }
        const order = randomOrder({ orderId: `lb-${n}` });
        for (let attempt = 0; ; attempt++) {
          let status: number | string;
          try {
            const response = await fetch(`http://127.0.0.1:${lbPort}/v1/orders`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify(order),
              signal: AbortSignal.timeout(20_000),
            });
            await response.arrayBuffer();
            status = response.status;
            if (response.ok) {
              acknowledged.push(order.orderId);
              if (reloadedAt > 0) postedAfterReload++;
              break;
            }
          } catch (error) {
            status = (error as { cause?: { code?: string } }).cause?.code ?? 'network';
          }
          if (!(status === 502 || status === 503 || status === 504 || typeof status === 'string') || attempt >= 5) throw new Error(`POST ${order.orderId}: ${status}`);
          errors[String(status)] = (errors[String(status)] ?? 0) + 1;
          failures.push(`${status} ${Date.now() - killedAt} ms after the kill${reloadedAt > 0 ? `, ${Date.now() - reloadedAt} ms after the reload` : ''}`);
          retried.add(order.orderId);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    };
    const started = Date.now();
    await Promise.all(Array.from({ length: CLIENTS }, post));
    const elapsedMs = Date.now() - started;

    expect(acknowledged).toHaveLength(EVENTS);
    const records = await collector.waitFor((r) => new Set(r.map((x) => x.key?.toString())).size >= EVENTS, 30_000, 'every acknowledged event');
    await collector.close();
    const counts = new Map<string, number>();
    for (const r of records) counts.set(r.key!.toString(), (counts.get(r.key!.toString()) ?? 0) + 1);
    const totalErrors = Object.values(errors).reduce((a, b) => a + b, 0);
    const duplicated = [...counts].filter(([, c]) => c > 1).map(([id]) => id);
    log.warn({ elapsedMs, errors, totalErrors, retried: retried.size, duplicated }, 'HAProxy kill figures');
    for (const id of acknowledged) {
      // A request that failed ambiguously (the replica died after Kafka's ack, before the reply) and was
      // retried may be on the topic twice: POST is not idempotent. Every other event is there exactly once.
      if (retried.has(id)) expect(counts.get(id), id).toBeGreaterThanOrEqual(1);
      else expect(counts.get(id), id).toBe(1);
    }
    expect(duplicated.every((id) => retried.has(id))).toBe(true);
    // Bound: only requests in flight on the killed replica fail (at most one per client); requests that
    // could not be sent to it are retried by HAProxy (retry-on conn-failure + redispatch). Counted per
    // request: a retry that meets a 503 from a busy survivor is the client's retry loop, not a lost request.
    expect(retried.size, JSON.stringify({ errors, failures })).toBeLessThanOrEqual(CLIENTS);
    // The reload came while events were still posted, and failed none (option idle-close-on-response: without
    // it the old worker closed idle client connections, and requests racing that close failed with a socket error).
    expect(postedAfterReload).toBeGreaterThan(0);
    expect(failures.filter((f) => f.includes('after the reload'))).toEqual([]);

    // The killed replica's lease expired and HAProxy was reloaded without it.
    expect(await discovery.list('ingress')).toHaveLength(2);
    expect(readFileSync(join(dir, 'nginx.conf'), 'utf8')).not.toContain(`:${ports[1]} `);
  }, 300_000);
});

describe('`sluice lb` exposure and what it takes from discovery', () => {
  it('refuses a non-loopback address without an access file or --insecure, as every listener does', async () => {
    const refused = await runCli(['lb', '--host', '0.0.0.0', '--port', String(await freePort())], { SLUICE_ETCD: 'http://127.0.0.1:9' });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr + refused.stdout).toMatch(/lb: refusing to listen on 0\.0\.0\.0 without an access file/);
  });

  describe.skipIf(!hasEtcd())('with etcd', () => {
    const log = testLogger(testConfig(), 'lb-entries-test');
    let etcd: TestEtcd;
    beforeAll(async () => {
      etcd = await startTestEtcd(log);
    });
    afterAll(async () => etcd?.stop());

    it('an entry written to etcd with HAProxy directives in its address is skipped with a warning naming it, and is not in haproxy.cfg nor the NGINX include', async () => {
      const prefix = `/${uniqueName('sluice-lb-entries')}/`;
      const entry = (id: string, address: string, port: number) =>
        JSON.stringify({ id, kind: 'ingress', name: 'ingress', address, port, healthUrl: '', version: '0.1.0', pid: 1, startedAt: new Date().toISOString() });
      const client = new EtcdClient([etcd.endpoint]);
      await client.put(`${prefix}ingress/ingress/good`, entry('good', '127.0.0.1', 18081));
      await client.put(`${prefix}ingress/ingress/evil`, entry('evil-1', '127.0.0.1:18082 check\n    server pwn 6.6.6.6:80\nlisten pwn\n    bind 0.0.0.0:1', 18082));
      const env = { SLUICE_ETCD: etcd.endpoint, SLUICE_DISCOVERY_PREFIX: prefix, SLUICE_LOG_LEVEL: 'warn' };
      for (const kind of ['haproxy', 'nginx']) {
        const printed = await runCli(['--discovery', 'lb', '--print', kind], env);
        expect(printed.code, printed.stderr).toBe(0);
        expect(printed.stdout).toContain('127.0.0.1:18081');
        expect(printed.stdout).not.toMatch(/6\.6\.6\.6|pwn|0\.0\.0\.0/);
        expect(printed.stderr).toMatch(/ingress instance \\?"evil-1\\?" in discovery skipped: address is not an IP address or a DNS hostname/);
      }
    });
  });
});
