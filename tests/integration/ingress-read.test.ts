import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, type SluiceConfig } from '../../core/config.ts';
import type { Logger } from '../../core/logger.ts';
import { RegistryClient } from '../../core/registry-client.ts';
import { startIngress, type Ingress } from '../../producers/server.ts';
import { READ_FETCH_BYTES } from '../../producers/read-route.ts';
import { startRegistry } from '../../registry/server.ts';
import { subjectFor, type Topology } from '../../topology/model.ts';
import { createTestTopics, seam, testConfig, testLogger, uniqueName, withKafkaAdmin } from '../support/platform.ts';

const SCHEMA_FILE = `${PROJECT_ROOT}/schemas/OrderPlaced.avsc`;
const schemaText = readFileSync(SCHEMA_FILE, 'utf8');

function topologyFor(topic: string, bulk: string): Topology {
  const schema = JSON.parse(schemaText) as NonNullable<Topology['topics'][number]['valueSchema']>['schema'];
  return {
    file: `${PROJECT_ROOT}/tests/integration/ingress-read.topology.yaml`,
    topics: [
      { name: topic, partitions: 2, replicationFactor: 1, configs: {}, valueSchema: { file: SCHEMA_FILE, subject: subjectFor(topic), schema, text: JSON.stringify(schema) } },
      { name: bulk, partitions: 1, replicationFactor: 1, configs: {} },
    ],
    routes: [{ method: 'POST', path: '/v1/orders', topic, key: 'orderId' }],
    workers: [],
  };
}

let seq = 0;
function order(amount = 19): Record<string, unknown> {
  seq += 1;
  return { orderId: `o-${seq}`, customerId: 'c-1', items: [{ sku: 'SKU-1', quantity: 2, unitPrice: 9.5 }], amount, currency: 'EUR', placedAt: 1767225600000 };
}

interface SseEvent {
  id: string;
  data: Record<string, unknown>;
}

/** Reads an SSE stream until `count` events came, then disconnects. */
async function readSse(url: string, count: number, lastEventId?: string, onOpen?: () => Promise<void>): Promise<SseEvent[]> {
  const controller = new AbortController();
  const headers: Record<string, string> = { accept: 'text/event-stream' };
  if (lastEventId) headers['last-event-id'] = lastEventId;
  const response = await fetch(url, { headers, signal: controller.signal });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  await onOpen?.();
  const events: SseEvent[] = [];
  const decoder = new TextDecoder();
  let text = '';
  for await (const chunk of response.body!) {
    text += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = text.indexOf('\n\n')) >= 0) {
      const block = text.slice(0, end);
      text = text.slice(end + 2);
      const id = /^id: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (id && data) events.push({ id, data: JSON.parse(data) as Record<string, unknown> });
    }
    if (events.length >= count) break;
  }
  controller.abort();
  // A chunk may carry more events than asked for; the client saw (and resumes after) the first `count`.
  return events.slice(0, count);
}

let config: SluiceConfig;
let log: Logger;
let registry: { url: string; close(): Promise<void> };
let ingress: Ingress;
let topic: string;
let bulk: string;

async function post(events: unknown): Promise<void> {
  const response = await fetch(`${ingress.url}/v1/orders`, { method: 'POST', body: JSON.stringify(events), headers: { 'content-type': 'application/json' } });
  expect(response.status).toBe(200);
}

beforeAll(async () => {
  config = testConfig({ lingerMs: '2' });
  log = testLogger(config, 'ingress-read-test');
  topic = uniqueName('read-orders');
  bulk = uniqueName('read-bulk');
  await createTestTopics([
    { name: topic, partitions: 2 },
    { name: bulk, partitions: 1 },
  ]);
  registry = await startRegistry({ config, logger: log, port: 0 });
  ingress = await startIngress({ config, logger: log, topology: topologyFor(topic, bulk), registry: new RegistryClient(registry.url), port: 0 });
  await post(Array.from({ length: 10 }, (_, i) => order(i * 10)));
});

afterAll(async () => {
  await ingress?.close();
  await registry?.close();
  await withKafkaAdmin((admin) => admin.deleteTopics([topic, bulk, config.registryTopic])).catch(() => undefined);
});

describe('GET /v1/topics/{topic}/records', () => {
  it('streams NDJSON decoded through the registry, with key, headers, partition, offset and timestamp', async () => {
    const response = await fetch(`${ingress.url}/v1/topics/${topic}/records?from=beginning&max=10`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const lines = (await response.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(10);
    const first = lines[0]!;
    expect(first.topic).toBe(topic);
    expect([0, 1]).toContain(first.partition);
    expect(first.offset).toMatch(/^\d+$/);
    expect(Date.parse(first.timestamp as string)).toBeGreaterThan(0);
    expect(first.key).toBe((first.value as { orderId: string }).orderId);
    expect(first.headers as [string, string | null][]).toContainEqual(['content-type', 'application/vnd.sluice.avro']);
    expect(new Set(lines.map((l) => (l.value as { orderId: string }).orderId)).size).toBe(10);
  });

  it('filters with where and stops at max', async () => {
    const response = await fetch(`${ingress.url}/v1/topics/${topic}/records?from=beginning&max=3&where=${encodeURIComponent('value.amount >= 50')}`);
    const lines = (await response.text()).trim().split('\n');
    expect(lines).toHaveLength(3);
    for (const l of lines) expect((JSON.parse(l) as { value: { amount: number } }).value.amount).toBeGreaterThanOrEqual(50);
  });

  it('SSE from=end shows events as they are posted', async () => {
    const fresh = [order(1), order(2)];
    const events = await readSse(`${ingress.url}/v1/topics/${topic}/records?from=end`, 2, undefined, () => post(fresh));
    expect(events.map((e) => (e.data.value as { orderId: string }).orderId).sort()).toEqual(fresh.map((o) => o.orderId as string).sort());
  });

  it('SSE resumes after a disconnect from Last-Event-ID: no gap, no repeat', async () => {
    const url = `${ingress.url}/v1/topics/${topic}/records?from=beginning`;
    const firstPart = await readSse(url, 4);
    expect(firstPart[3]!.id).toMatch(/^p0:\d+,p1:\d+$/);
    const more = [order(3), order(4), order(5)];
    await post(more);
    const total = 12 + more.length;
    const rest = await readSse(url, total - 4, firstPart[3]!.id);
    const seen = [...firstPart, ...rest].map((e) => `${String(e.data.partition)}:${String(e.data.offset)}`);
    expect(seen).toHaveLength(total);
    expect(new Set(seen).size).toBe(total);
    const all = (await (await fetch(`${ingress.url}/v1/topics/${topic}/records?from=beginning&max=${total}`)).text()).trim().split('\n');
    expect(new Set(all.map((l) => JSON.parse(l) as { partition: number; offset: string }).map((r) => `${r.partition}:${r.offset}`))).toEqual(new Set(seen));
  });

  it('a slow reader pauses fetching: the bytes buffered for it stay bounded', async () => {
    const producer = seam('read-bulk-writer').producer();
    const value = Buffer.alloc(5000, 7);
    try {
      for (let i = 0; i < 40; i++) await producer.send(Array.from({ length: 100 }, () => ({ topic: bulk, value })));
    } finally {
      await producer.close();
    }
    const { port } = new URL(ingress.url);
    const socket = connect(Number(port), '127.0.0.1');
    socket.pause();
    socket.write(`GET /v1/topics/${bulk}/records?from=beginning HTTP/1.1\r\nhost: x\r\n\r\n`);
    // About 40 MB of NDJSON (the undecodable values are shown in hex) wait on the topic; the client reads none of it.
    await new Promise((r) => setTimeout(r, 3000));
    const stats = ingress.readStats();
    expect(stats.open).toBe(1);
    expect(stats.maxBufferedBytes).toBeGreaterThan(0);
    expect(stats.maxBufferedBytes).toBeLessThan(READ_FETCH_BYTES * 2 + 64 * 1024);
    socket.destroy();
    for (let i = 0; i < 50 && ingress.readStats().open > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(ingress.readStats().open).toBe(0);
  });

  it('answers 404 for an unknown topic and 400 naming a bad parameter', async () => {
    const missing = await fetch(`${ingress.url}/v1/topics/nope/records`);
    expect(missing.status).toBe(404);
    for (const [query, name] of [
      ['from=yesterday', 'from'],
      ['partition=7', 'partition'],
      ['max=0', 'max'],
      ['where=value.(', 'where'],
    ] as const) {
      const response = await fetch(`${ingress.url}/v1/topics/${topic}/records?${query}`);
      expect(response.status, query).toBe(400);
      expect(((await response.json()) as { message: string }).message.startsWith(`${name}:`), query).toBe(true);
    }
    const badResume = await fetch(`${ingress.url}/v1/topics/${topic}/records`, { headers: { 'last-event-id': 'x' } });
    expect(badResume.status).toBe(400);
  });
});
