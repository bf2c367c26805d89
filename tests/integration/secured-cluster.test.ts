import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { loadConfig, type OPTIONS } from '../../core/config.ts';
import { createKafka } from '../../kafka/index.ts';
import { randomOrder } from '../support/orders.ts';
import { freePort, runSluice, waitForOk, type SluiceProcess } from '../support/processes.ts';
import { uniqueName } from '../support/platform.ts';

/**
 * Sluice as a user of a secured cluster runs it: every client (ingress, registry
 * store, topology, the exactly-once worker) over the test broker's SASL_SSL
 * listener with SCRAM credentials and the cluster's CA, configured only through
 * Kafka's own option names. Nothing here uses the PLAINTEXT listener.
 */
const secure = inject('kafkaSecure');

describe.runIf(secure)('a secured cluster (SASL_SSL)', () => {
  const s = secure!;
  const settings = (mechanism: string, password = s.password): Partial<Record<keyof typeof OPTIONS, string>> => ({
    kafkaBrokers: s.brokers.join(','),
    kafkaSecurityProtocol: 'SASL_SSL',
    kafkaSaslMechanism: mechanism,
    kafkaSaslUsername: s.username,
    kafkaSaslPassword: password,
    kafkaSslCaLocation: s.caFile,
    logLevel: 'silent',
  });
  const seamWith = (mechanism: string, password?: string) => createKafka(loadConfig({}, settings(mechanism, password)), pino({ level: 'silent' }), 'secured-test');

  it.each(['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'])('the seam produces and reads back with SASL %s over TLS', async (mechanism) => {
    const kafka = seamWith(mechanism);
    const topic = uniqueName(`secured-${mechanism.toLowerCase()}`);
    const admin = kafka.admin();
    const producer = kafka.producer({ name: 'secured-producer' });
    const reader = kafka.partitionReader({ maxWaitMs: 100 });
    try {
      await admin.createTopics([{ name: topic, partitions: 2 }]);
      const acks = await producer.send([
        { topic, key: Buffer.from('a'), value: Buffer.from('over sasl_ssl') },
        { topic, key: Buffer.from('b'), value: Buffer.from('and again') },
      ]);
      expect(acks).toHaveLength(2);
      const records = await reader.readToEnd([topic]);
      expect(records.map((r) => r.value?.toString()).sort()).toEqual(['and again', 'over sasl_ssl']);
    } finally {
      await reader.close();
      await producer.close();
      await admin.deleteTopics([topic]).catch(() => undefined);
      await admin.close();
    }
  });

  it.each(['PLAIN', 'SCRAM-SHA-512'])('a wrong %s password is a fatal error naming the mechanism, not a hang', async (mechanism) => {
    const admin = seamWith(mechanism, 'not-the-password').admin();
    try {
      const error = (await admin.describeCluster().then(
        () => undefined,
        (e: unknown) => e,
      )) as { code?: string; retryable?: boolean; message?: string } | undefined;
      expect(error?.code).toBe('SLUICE_KAFKA_AUTH_FAILED');
      expect(error?.retryable).toBe(false);
      expect(error?.message).toContain(mechanism);
      expect(error?.message).not.toContain('not-the-password');
    } finally {
      await admin.close().catch(() => undefined);
    }
  });

  describe('sluice up with credentials: ingress -> orders.placed -> score-orders (exactly once) -> orders.scored', () => {
    let sluice: SluiceProcess;
    let ingressUrl: string;
    const env: NodeJS.ProcessEnv = {};

    beforeAll(async () => {
      const [ingressPort, registryPort] = [await freePort(), await freePort()];
      ingressUrl = `http://127.0.0.1:${ingressPort}`;
      Object.assign(env, {
        KAFKA_BROKERS: s.brokers.join(','),
        KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
        KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
        KAFKA_SASL_USERNAME: s.username,
        KAFKA_SASL_PASSWORD: s.password,
        KAFKA_SSL_CA_LOCATION: s.caFile,
        SLUICE_INGRESS_PORT: String(ingressPort),
        SLUICE_REGISTRY_PORT: String(registryPort),
        SLUICE_REGISTRY_URL: `http://127.0.0.1:${registryPort}`,
        SLUICE_REGISTRY_TOPIC: uniqueName('_schemas_secured'),
      });
      sluice = runSluice(['up'], env);
      await waitForOk(`${ingressUrl}/readyz`, sluice);
    });

    afterAll(async () => {
      if (sluice?.child.exitCode === null) {
        sluice.child.kill('SIGKILL');
        await sluice.exited;
      }
    });

    it('400 events from 8 clients: each scored exactly once (read_committed, over SASL_SSL); the password never logged', async () => {
      const ids: string[] = [];
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          for (let i = 0; i < 50; i++) {
            const order = randomOrder();
            const response = await fetch(`${ingressUrl}/v1/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(order) });
            expect(response.status, await response.text()).toBe(200);
            ids.push(order.orderId);
          }
        }),
      );
      const wanted = new Set(ids);
      const reader = seamWith('SCRAM-SHA-512').partitionReader({ maxWaitMs: 100, readCommitted: true });
      let copies = new Map<string, number>();
      try {
        const deadline = Date.now() + 60_000;
        while (Date.now() < deadline) {
          copies = new Map();
          for (const r of await reader.readToEnd(['orders.scored'])) {
            const key = r.key?.toString('utf8');
            if (key !== undefined && wanted.has(key)) copies.set(key, (copies.get(key) ?? 0) + 1);
          }
          if (copies.size === wanted.size) break;
          await sleep(500);
        }
      } finally {
        await reader.close();
      }
      expect(copies.size).toBe(wanted.size);
      expect([...copies.values()].filter((n) => n !== 1)).toEqual([]);

      sluice.child.kill('SIGTERM');
      expect(await sluice.exited).toBe(0);
      expect(sluice.output()).not.toContain(s.password);
    });
  });
});
