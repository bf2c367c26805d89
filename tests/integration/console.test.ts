import { existsSync, mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PROJECT_ROOT } from '../../core/config.ts';
import { RegistryClient } from '../../core/registry-client.ts';
import { startConsole, type RunningConsole } from '../../console/server.ts';
import { startIngress, type Ingress } from '../../producers/server.ts';
import { startRegistry, type RunningRegistry } from '../../registry/server.ts';
import { orderTopology } from '../support/order-topology.ts';
import { randomOrder } from '../support/orders.ts';
import { pino } from 'pino';
import { READ_FETCH_BYTES } from '../../producers/read-route.ts';
import { createKafka, type GroupConsumer } from '../../kafka/index.ts';
import { createTestTopics, seam, testConfig, testLogger, uniqueName, withKafkaAdmin } from '../support/platform.ts';

/**
 * The web console as a person uses it: Debian's chromium (headless, driven by
 * playwright-core) opens the pages, picks an OrderPlaced topic, watches a record
 * posted during the test arrive live, filters, and diffs two schema versions.
 * A screenshot of every page is kept in tests/artifacts/.
 */
const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
const ARTIFACTS = `${PROJECT_ROOT}/tests/artifacts`;
if (!hasChromium) process.stderr.write(`console browser tests skipped: ${CHROMIUM} is missing (apt-get install chromium)\n`);

const topic = uniqueName('orders.placed-console');
const group = uniqueName('console-test-group');
let registry: RunningRegistry;
let ingress: Ingress;
let console_: RunningConsole;
let consumer: GroupConsumer;
let browser: Browser;
let postedCount = 0;
let page: Page;

async function post(overrides: Parameters<typeof randomOrder>[0] = {}) {
  const order = randomOrder(overrides);
  const response = await fetch(`${ingress.url}/v1/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(order) });
  expect(response.status).toBe(200);
  postedCount += 1;
  return order;
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: `${ARTIFACTS}/console-${name}.png`, fullPage: true });
}

describe.skipIf(!hasChromium)('web console in headless chromium', () => {
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const base = testConfig();
    const log = testLogger(base, 'console-test');
    await createTestTopics([{ name: topic, partitions: 3 }]);
    registry = await startRegistry({ config: base, logger: log, port: 0, topic: uniqueName('_schemas_console') });
    const config = testConfig({ registryUrl: registry.url, consoleLagIntervalMs: '1000' });
    ingress = await startIngress({ config, logger: log, topology: orderTopology(topic, 3), registry: new RegistryClient(registry.url), port: 0 });
    console_ = await startConsole({ config, logger: log, port: 0 });
    for (let i = 0; i < 6; i++) await post();
    // A group with a live member that has read and committed the first 6 records.
    consumer = createKafka(base, pino({ level: 'silent' }), 'console-test-consumer').groupConsumer({
      groupId: group,
      topics: [topic],
      protocol: 'classic',
      sessionTimeoutMs: 10_000,
      heartbeatIntervalMs: 1000,
      concurrency: 3,
      fallback: 'earliest',
      maxWaitMs: 200,
    });
    const next = new Map<number, bigint>();
    let frozen = false;
    await consumer.start({
      batch: async (batch) => {
        if (!frozen) next.set(batch.partition, batch.records.at(-1)!.offset + 1n);
      },
    });
    while ([...next.values()].reduce((sum, o) => sum + Number(o), 0) < 6) await new Promise((r) => setTimeout(r, 100));
    // Exactly the first 6 records are committed, and nothing more ever is: later records stay lag
    // whatever a fetch already in flight still brings.
    frozen = true;
    await consumer.commit([...next].map(([partition, offset]) => ({ topic, partition, offset })));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1360, height: 860 } });
    page.on('pageerror', (error) => process.stderr.write(`console page error: ${error.message}\n`));
  });

  afterAll(async () => {
    await browser?.close();
    await consumer?.close();
    await console_?.close();
    await ingress?.close();
    await registry?.close();
  });

  afterEach(async (context) => {
    // What the page looked like when a step failed is the first thing to look at.
    if (context.task.result?.state === 'fail') await shot(`failed-${context.task.name.slice(0, 30).replace(/\W+/g, '-')}`);
  });

  it("lists topics and shows a topic's partitions, offsets, counts and configs", async () => {
    await page.goto(`${console_.url}/#/topics`);
    await page.getByRole('link', { name: topic, exact: true }).click();
    await page.getByRole('heading', { name: 'Partitions', exact: true }).waitFor();
    await expect.poll(() => page.locator('h1 .badge').textContent()).toContain('6 offsets');
    expect(await page.locator('table').first().locator('tbody tr').count()).toBe(3);
    await expect.poll(() => page.getByText('retention.ms', { exact: true }).count()).toBe(1);
    await shot('topic');
  });

  it('tails the topic live: a record posted now appears, the filter narrows, the detail opens', async () => {
    await page.goto(`${console_.url}/#/tail`);
    await page.selectOption('#tail-topic', topic);
    await expect.poll(() => page.getByTestId('tail-status').textContent(), { timeout: 15_000 }).toContain('live');
    const order = await post({ currency: 'GBP', amount: 321.5 });
    const row = page.locator(`tr[data-key="${order.orderId}"]`);
    await row.waitFor({ timeout: 15_000 });

    await page.fill('#where', 'value.currency == "CHF" && value.amount > 100');
    await page.click('#apply');
    // The new stream's own status: the old page's "live" may still be showing for a moment.
    await expect.poll(() => page.getByTestId('tail-status').textContent(), { timeout: 15_000 }).toBe('live · 0 records');
    const [miss, hit] = [await post({ currency: 'USD', amount: 500 }), await post({ currency: 'CHF', amount: 150 })];
    await page.locator(`tr[data-key="${hit.orderId}"]`).waitFor({ timeout: 15_000 });
    expect(await page.locator(`tr[data-key="${miss.orderId}"]`).count()).toBe(0);
    expect(await page.locator('[data-testid="records"] tbody tr').count()).toBe(1);

    await page.locator(`tr[data-key="${hit.orderId}"]`).click();
    const detail = await page.getByTestId('record-json').textContent();
    expect(detail).toContain(`"orderId": "${hit.orderId}"`);
    expect(detail).toContain('"currency": "CHF"');
    await shot('tail');
  });

  it("shows a schema's versions and compatibility, and a side-by-side diff of two versions", async () => {
    const subject = `${topic}-value`;
    const v1 = JSON.parse((await new RegistryClient(registry.url).latest(subject)).schema) as { fields: unknown[] };
    const ruleSet = { domainRules: [{ name: 'positive-amount', kind: 'CONDITION', mode: 'WRITE', type: 'CEL', expr: 'message.amount > 0', onFailure: 'DLQ', params: { 'dlq.topic': 'review' } }] };
    await new RegistryClient(registry.url).register(subject, { ...v1, fields: [...v1.fields, { name: 'giftWrap', type: 'boolean', default: false }] } as never, {
      ruleSet,
      metadata: { tags: { '**.customerId': ['PII'] } },
    });
    await page.goto(`${console_.url}/#/schemas`);
    await page.getByRole('link', { name: subject }).click();
    await page.getByTestId('diff').waitFor();
    expect(await page.getByTestId('compatibility').textContent()).toBe('BACKWARD');
    expect(await page.getByTestId('diff-summary').textContent()).toMatch(/changed line/);
    const added = page.locator('.diff .side').nth(1).locator('.line.add');
    expect(await added.allTextContents()).toEqual(expect.arrayContaining([expect.stringContaining('"giftWrap"')]));
    expect(await page.locator('.diff .side').nth(0).getByText('giftWrap').count()).toBe(0);
    // The right-hand version's data contract: its rules and tags, as the ingress and workers enforce them.
    const contract = page.getByTestId('contract');
    expect(await contract.locator('tbody tr').first().locator('td').allTextContents()).toEqual(['positive-amount', 'domain', 'CONDITION', 'WRITE', 'CEL', '', 'message.amount > 0', 'DLQ', '']);
    expect(await contract.locator('dl').textContent()).toContain('tags **.customerIdPII');
    await page.locator('#right').selectOption('1');
    await expect.poll(() => page.getByTestId('contract').textContent()).toBe('Version 1 has no rules or metadata.');
    await page.locator('#right').selectOption('2');
    await shot('schema-diff');
  });

  it("shows a consumer group's members, lag per partition and a lag chart over time", async () => {
    await post();
    await post();
    await page.goto(`${console_.url}/#/groups`);
    await page.getByRole('link', { name: group }).click();
    await page.getByTestId('lag-chart').waitFor();
    await expect.poll(() => page.getByTestId('total-lag').textContent(), { timeout: 15_000 }).toBe(`lag ${postedCount - 6}`);
    expect(await page.getByText('console-test-consumer').count()).toBeGreaterThan(0);
    // Every partition has a lag row, including one the group may never have committed on.
    const detail = (await (await fetch(`${console_.url}/api/groups/${encodeURIComponent(group)}`)).json()) as { lag: { partition: number }[] };
    expect(detail.lag.map((l) => l.partition).sort()).toEqual([0, 1, 2]);
    await expect.poll(() => page.locator('[data-testid="lag-chart"] polyline').count(), { timeout: 10_000 }).toBe(1);
    await shot('group');
  });
});

describe('the console live tail and its query', () => {
  const bulk = uniqueName('console.bulk');
  let tailConsole: RunningConsole;
  beforeAll(async () => {
    const config = testConfig();
    await createTestTopics([{ name: bulk, partitions: 1 }]);
    tailConsole = await startConsole({ config, logger: testLogger(config, 'console-tail-test'), port: 0 });
  });
  afterAll(async () => {
    await tailConsole?.close();
    await withKafkaAdmin((admin) => admin.deleteTopics([bulk])).catch(() => undefined);
  });

  it('refuses a repeated query parameter with 400 naming it (not "a,b" reaching the permission check)', async () => {
    const answer = await fetch(`${tailConsole.url}/api/tail?topic=${bulk}&topic=other`);
    expect(answer.status).toBe(400);
    expect(((await answer.json()) as { message: string }).message).toContain('"topic"');
  });

  it('a browser that stops reading pauses the tail: the bytes buffered for it stay bounded', async () => {
    const producer = seam('console-bulk-writer').producer();
    const value = Buffer.alloc(5000, 7);
    try {
      for (let i = 0; i < 40; i++) await producer.send(Array.from({ length: 100 }, () => ({ topic: bulk, value })));
    } finally {
      await producer.close();
    }
    const { port } = new URL(tailConsole.url);
    const socket = connect(Number(port), '127.0.0.1');
    socket.pause();
    socket.write(`GET /api/tail?topic=${bulk}&from=beginning HTTP/1.1\r\nhost: x\r\n\r\n`);
    try {
      // About 40 MB of events (the undecodable values are shown in hex) wait on the topic; the client reads none of it.
      await expect.poll(() => tailConsole.tailStats().maxBufferedBytes, { timeout: 10_000 }).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 3000));
      const stats = tailConsole.tailStats();
      expect(stats.open).toBe(1);
      expect(stats.maxBufferedBytes).toBeLessThan(READ_FETCH_BYTES * 2 + 64 * 1024);
    } finally {
      socket.destroy();
    }
  });
});
