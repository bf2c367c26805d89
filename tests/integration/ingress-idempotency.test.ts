import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, type SluiceConfig } from '../../core/config.ts';
import type { Logger } from '../../core/logger.ts';
import { RegistryClient } from '../../core/registry-client.ts';
import { startIngress, type Ingress } from '../../producers/server.ts';
import { startRegistry } from '../../registry/server.ts';
import { orderTopology } from '../support/order-topology.ts';
import { fingerprint, scopeOf } from '../../producers/idempotency.ts';
import { brokers, createTestTopics, readTopics, seam, testConfig, testLogger, uniqueName, withKafkaAdmin } from '../support/platform.ts';

let seq = 0;
function order(): Record<string, unknown> {
  seq += 1;
  return {
    orderId: `i-${seq}-${Math.random().toString(36).slice(2, 8)}`,
    customerId: 'c-1',
    items: [{ sku: 'SKU-1', quantity: 1, unitPrice: 5 }],
    amount: 5,
    currency: 'EUR',
    placedAt: 1767225600000,
  };
}

interface Reply {
  status: number;
  replayed: boolean;
  text: string;
}

async function post(url: string, body: unknown, key: string): Promise<Reply> {
  const response = await fetch(`${url}/v1/orders`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', 'idempotency-key': key } });
  return { status: response.status, replayed: response.headers.get('idempotent-replayed') === 'true', text: await response.text() };
}

let config: SluiceConfig;
let log: Logger;
let registry: { url: string; close(): Promise<void> };
let a: Ingress;
let b: Ingress;
let topic: string;

function start(): Promise<Ingress> {
  return startIngress({ config, logger: log, topology: orderTopology(topic, 3), registry: new RegistryClient(registry.url), port: 0 });
}

/** How many records on the topic carry this order id. */
async function copies(orderId: string): Promise<number> {
  const records = await readTopics([topic]);
  return records.filter((r) => r.key?.toString() === orderId).length;
}

beforeAll(async () => {
  // A short lease, for the test of a claim whose writer died before writing.
  config = testConfig({ lingerMs: '2', idempotencyTopic: uniqueName('_sluice_idempotency_test'), idempotencyLeaseMs: '2000' });
  log = testLogger(config, 'ingress-idempotency-test');
  topic = uniqueName('idem-orders');
  await createTestTopics([{ name: topic, partitions: 3 }]);
  registry = await startRegistry({ config, logger: log, port: 0 });
  [a, b] = await Promise.all([start(), start()]);
});

afterAll(async () => {
  await a?.close();
  await b?.close();
  await registry?.close();
  await withKafkaAdmin((admin) => admin.deleteTopics([topic, config.registryTopic, config.idempotencyTopic])).catch(() => undefined);
});

describe('Idempotency-Key', () => {
  it('the same POST twice: identical responses, one record', async () => {
    const event = order();
    const first = await post(a.url, event, 'k-same');
    const second = await post(a.url, event, '"k-same"');
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.text).toBe(first.text);
    expect([first.replayed, second.replayed]).toEqual([false, true]);
    expect(await copies(event.orderId as string)).toBe(1);
  });

  // The retry goes out the moment the first answer arrives: the first replica answers only once the commit
  // marker is on the topic, so the second replica's barrier (the last stable offset) includes the response.
  it('the same key at another replica, retried at once: the original response, one record (20 keys)', async () => {
    for (let i = 0; i < 20; i++) {
      const event = order();
      const first = await post(a.url, event, `k-replica-${i}`);
      const second = await post(b.url, event, `k-replica-${i}`);
      expect(second.status).toBe(200);
      expect(second.text).toBe(first.text);
      expect(second.replayed).toBe(true);
      expect(await copies(event.orderId as string)).toBe(1);
    }
  });

  it('the same key with another body: 422; a duplicate still in flight: 409', async () => {
    await post(a.url, order(), 'k-reused');
    const reused = await post(b.url, order(), 'k-reused');
    expect(reused.status).toBe(422);
    expect(reused.text).toContain('SLUICE_IDEMPOTENCY_KEY_REUSED');
    const event = order();
    const both = await Promise.all([post(a.url, event, 'k-race'), post(a.url, event, 'k-race')]);
    expect(both.map((r) => r.status).sort()).toEqual([200, 409]);
    expect(await copies(event.orderId as string)).toBe(1);
  });

  it('a bad key is a 400 naming the header; requests without a key are not remembered', async () => {
    const bad = await post(a.url, order(), 'has space');
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('Idempotency-Key');
    const event = order();
    for (let i = 0; i < 2; i++) {
      const response = await fetch(`${a.url}/v1/orders`, { method: 'POST', body: JSON.stringify(event), headers: { 'content-type': 'application/json' } });
      expect(response.status).toBe(200);
    }
    expect(await copies(event.orderId as string)).toBe(2);
  });

  // With a stable SLUICE_INSTANCE_ID the restarted replica takes over its predecessor's transactional ids.
  it('after a restart with the same instance id: the same response, and new keys are written', async () => {
    const event = order();
    const first = await post(a.url, event, 'k-restart');
    await a.close();
    a = await start();
    const again = await post(a.url, event, 'k-restart');
    expect(again.text).toBe(first.text);
    expect(await copies(event.orderId as string)).toBe(1);

    const instanceId = uniqueName('idem-restart');
    const withId = (): Promise<Ingress> => startIngress({ config: { ...config, instanceId }, logger: log, topology: orderTopology(topic, 3), registry: new RegistryClient(registry.url), port: 0 });
    let c = await withId();
    const before = order();
    expect((await post(c.url, before, 'k-stable-1')).status).toBe(200);
    await c.close();
    c = await withId();
    try {
      const fresh = order();
      const written = await post(c.url, fresh, 'k-stable-2');
      expect(written.status, written.text).toBe(200);
      expect(written.replayed).toBe(false);
      expect((await post(c.url, before, 'k-stable-1')).replayed).toBe(true);
      expect(await copies(fresh.orderId as string)).toBe(1);
    } finally {
      await c.close();
    }
  });

  it('retried after the ingress was SIGKILLed between produce and response: one record', async () => {
    const child: ChildProcess = spawn(process.execPath, ['--disable-warning=TimeoutNegativeWarning', `${PROJECT_ROOT}/tests/support/idempotent-ingress.ts`, topic, registry.url, 'crash'], {
      env: { ...process.env, KAFKA_BROKERS: brokers().join(','), SLUICE_IDEMPOTENCY_TOPIC: config.idempotencyTopic, SLUICE_LOG_LEVEL: 'silent', SLUICE_LOG_FORMAT: 'json' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0]!);
      });
      child.once('exit', () => reject(new Error(`the crash ingress exited before it listened: ${out}`)));
    });
    const event = order();
    await expect(post(url, event, 'k-crash')).rejects.toThrow();
    expect(await exited).toBe('SIGKILL');
    const retry = await post(b.url, event, 'k-crash');
    expect(retry.status).toBe(200);
    expect(retry.replayed).toBe(true);
    const records = (await readTopics([topic])).filter((r) => r.key?.toString() === event.orderId);
    expect(records).toHaveLength(1);
    const answer = JSON.parse(retry.text) as { partition: number; offset: string };
    expect([records[0]!.partition, records[0]!.offset.toString()]).toEqual([answer.partition, answer.offset]);
  });

  it('the same new key at two replicas at once: one record, and every 200 names it', async () => {
    for (let i = 0; i < 10; i++) {
      const event = order();
      const replies = await Promise.all([post(a.url, event, `k-both-${i}`), post(b.url, event, `k-both-${i}`)]);
      const ok = replies.filter((r) => r.status === 200);
      expect(ok.length, replies.map((r) => `${r.status} ${r.text}`).join('; ')).toBeGreaterThan(0);
      // The loser either found the winner's event (the same answer) or found it still being written (409).
      for (const r of replies) expect([200, 409]).toContain(r.status);
      expect(new Set(ok.map((r) => r.text)).size).toBe(1);
      expect(await copies(event.orderId as string)).toBe(1);
    }
  });

  it('a key claimed by a replica that died before writing: 409 until its lease ends, then written once', async () => {
    const event = order();
    const scope = scopeOf('/v1/orders', 'anonymous', 'k-orphan');
    // What a replica leaves when it is killed after its claim and before its events: a claim, nothing else.
    const kafka = seam();
    const producer = kafka.producer();
    try {
      await producer.send([
        {
          topic: config.idempotencyTopic,
          partition: 0,
          key: Buffer.from('gone:1'),
          value: Buffer.from(JSON.stringify({ v: 2, o: 'gone', c: [[scope, fingerprint(false, Buffer.from(JSON.stringify(event)))]] })),
          timestamp: BigInt(Date.now()),
        },
      ]);
    } finally {
      await producer.close();
    }
    const early = await post(a.url, event, 'k-orphan');
    expect(early.status, early.text).toBe(409);
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const late = await post(b.url, event, 'k-orphan');
    expect(late.status, late.text).toBe(200);
    expect(late.replayed).toBe(false);
    const again = await post(a.url, event, 'k-orphan');
    expect([again.status, again.replayed, again.text]).toEqual([200, true, late.text]);
    expect(await copies(event.orderId as string)).toBe(1);
  });
});
