import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { constants, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../core/config.ts';
import { parseJson, stringifyJson } from '../../core/json.ts';
import { RegistryClient } from '../../core/registry-client.ts';
import { startIngress, type Ingress } from '../../producers/server.ts';
import { startRegistry, type RunningRegistry } from '../../registry/server.ts';
import { ORDER_DEFAULTS, orderTopology } from '../support/order-topology.ts';
import { randomOrder, type OrderPlacedInput } from '../support/orders.ts';
import type { KafkaProducer } from '../../kafka/index.ts';
import { createTestTopics, seam, testConfig, testLogger, uniqueName, withKafkaAdmin } from '../support/platform.ts';
import { runTail, tailToEnd } from '../support/tail.ts';

/**
 * `sluice tail` as a user runs it (the CLI in its own process) against a real
 * broker, Sluice's registry and the real ingress: what comes out must be what
 * was posted, exactly, and no consumer group may be left with an offset.
 */

type Order = Omit<OrderPlacedInput, 'placedAt'> & { placedAt: number; loyaltyPoints?: number | bigint };
interface Posted {
  order: Order;
  partition: number;
  offset: string;
}
interface Line {
  topic: string;
  partition: number;
  offset: string;
  timestamp: string;
  key: unknown;
  value: Record<string, unknown> | null;
  headers?: [string, string | null][];
  error?: { code: string; message: string };
  valueHex?: string;
}

const PARTITIONS = 3;
const HUGE = 2n ** 60n + 1n;
const topic = uniqueName('orders.placed-tail');
const posted: Posted[] = [];
let tailsRun = 0;
let registry: RunningRegistry;
let ingress: Ingress;
let producer: KafkaProducer;
let env: NodeJS.ProcessEnv;

function lines(stdout: string): Line[] {
  return stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => parseJson(l) as Line);
}

function expected(order: Order): Record<string, unknown> {
  return { ...ORDER_DEFAULTS, ...order };
}

async function post(order: Order): Promise<Posted> {
  const response = await fetch(`${ingress.url}/v1/orders`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-correlation-id': order.orderId }, body: stringifyJson(order) });
  const reply = (await response.json()) as { partition: number; offset: string };
  expect(response.status, JSON.stringify(reply)).toBe(200);
  return { order, partition: reply.partition, offset: reply.offset };
}

async function tail(args: string[]) {
  const result = await tailToEnd([topic, '--log-level', 'info', ...args], env);
  tailsRun++;
  return result;
}

beforeAll(async () => {
  const config = testConfig();
  const log = testLogger(config, 'tail-test');
  await createTestTopics([{ name: topic, partitions: PARTITIONS }]);
  registry = await startRegistry({ config, logger: log, port: 0, topic: uniqueName('_schemas_tail') });
  ingress = await startIngress({ config, logger: log, topology: orderTopology(topic, PARTITIONS), registry: new RegistryClient(registry.url), port: 0 });
  producer = seam('sluice-tail-test').producer();
  env = { KAFKA_BROKERS: config.kafkaBrokers!.join(','), SLUICE_REGISTRY_URL: registry.url, SLUICE_LOG_LEVEL: 'warn' };
  // 25 events as an upstream posts them; every fifth is a big EUR order for --where, one carries a long beyond 2^53.
  for (let i = 0; i < 25; i++) {
    const order: Order = randomOrder(i % 5 === 0 ? { currency: 'EUR', amount: 150 + i } : { currency: i % 2 ? 'USD' : 'EUR', amount: 50 + i });
    if (i === 7) order.loyaltyPoints = HUGE;
    posted.push(await post(order));
  }
});

afterAll(async () => {
  await producer?.close();
  await ingress?.close();
  await registry?.close();
});

describe('sluice tail', () => {
  it('--from-beginning --max N --format ndjson prints every posted event exactly, longs beyond 2^53 included', async () => {
    const result = await tail(['--from-beginning', '--max', '25', '--format', 'ndjson']);
    expect(result.code, result.stderr).toBe(0);
    const out = lines(result.stdout);
    expect(out).toHaveLength(25);
    const byKey = new Map(out.map((l) => [l.key, l]));
    for (const p of posted) {
      const line = byKey.get(p.order.orderId);
      expect(line, p.order.orderId).toBeDefined();
      expect(line).toMatchObject({ topic, partition: p.partition, offset: p.offset });
      expect(Object.keys(line!)).toEqual(['topic', 'partition', 'offset', 'timestamp', 'key', 'value']);
      expect(Number.isNaN(Date.parse(line!.timestamp))).toBe(false);
      expect(line!.value).toEqual(expected(p.order));
    }
    expect(result.stdout).toContain(`"loyaltyPoints":${HUGE}`);
  });

  it('--where filters on the decoded value, key and headers', async () => {
    const big = posted.filter((p) => p.order.amount > 100 && p.order.currency === 'EUR');
    expect(big).toHaveLength(5);
    const result = await tail(['--from-beginning', '--max', '5', '--headers', '--where', 'value.amount > 100 && value.currency == "EUR"']);
    expect(result.code, result.stderr).toBe(0);
    const out = lines(result.stdout);
    expect(out.map((l) => l.key).sort()).toEqual(big.map((p) => p.order.orderId).sort());
    expect(out[0]!.headers).toContainEqual(['correlation-id', out[0]!.key]);

    const target = posted[3]!.order.orderId;
    const byKey = await tail(['--from-beginning', '--max', '1', '--where', `key == "${target}" && headers["correlation-id"] == "${target}"`]);
    expect(lines(byKey.stdout).map((l) => l.key)).toEqual([target]);
  });

  it('--partition with --offset reads that partition from that offset', async () => {
    const counts = [0, 1, 2].map((p) => posted.filter((x) => x.partition === p).length);
    const partition = counts.indexOf(Math.max(...counts));
    const result = await tail(['--partition', String(partition), '--offset', '1', '--max', String(counts[partition]! - 1)]);
    expect(result.code, result.stderr).toBe(0);
    const out = lines(result.stdout);
    expect(out.every((l) => l.partition === partition)).toBe(true);
    expect(out.map((l) => Number(l.offset))).toEqual(Array.from({ length: counts[partition]! - 1 }, (_, i) => i + 1));
  });

  it('--since starts at the first record at or after a time', async () => {
    await sleep(20);
    const since = new Date().toISOString();
    await sleep(20);
    const later = [await post(randomOrder()), await post(randomOrder())];
    posted.push(...later);
    const result = await tail(['--since', since, '--max', '2']);
    expect(result.code, result.stderr).toBe(0);
    expect(
      lines(result.stdout)
        .map((l) => l.key)
        .sort(),
    ).toEqual(later.map((p) => p.order.orderId).sort());
    const durations = await tail(['--since', '1h', '--max', String(posted.length)]);
    expect(lines(durations.stdout)).toHaveLength(posted.length);
  });

  it('names every topic that does not exist, and reads nothing', async () => {
    const missing = [uniqueName('missing-a'), uniqueName('missing-b')];
    const result = await tail(['--from-beginning', '--max', '1', missing[0]!, missing[1]!]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`sluice: no such topic: ${missing.join(', ')}\n`);
    // Internal topics are not Sluice's to read: as if they did not exist (whether this broker has made it yet or not).
    const internal = await tail(['--from-beginning', '--max', '1', '__consumer_offsets']);
    expect([internal.code, internal.stdout]).toEqual([1, '']);
    expect(internal.stderr).toContain('sluice: no such topic: __consumer_offsets\n');
  });

  it('by default follows new records only, and shows an undecodable one as hex with the reason, then goes on', async () => {
    const follower = runTail([topic, '--log-level', 'info', '--partition', '0'], env);
    await follower.waitForStderr('"tailing"');
    tailsRun++;
    const garbage = Buffer.from([0x00, 0x00, 0x00, 0x7f, 0xff, 0x01, 0x02]);
    const fresh = randomOrder();
    await producer.send([
      { topic, partition: 0, key: Buffer.from('broken-1'), value: garbage },
      { topic, partition: 0, key: Buffer.from('plain-text'), value: Buffer.from('not avro') },
    ]);
    const ok = await post(fresh);
    const deadline = Date.now() + 20_000;
    while (lines(follower.stdout()).length < 2 && Date.now() < deadline) await sleep(100);
    follower.child.kill('SIGINT');
    expect(await follower.exited).toBe(0);
    const out = lines(follower.stdout());
    expect(out.slice(0, 2).map((l) => l.key)).toEqual(['broken-1', 'plain-text']);
    expect(out[0]!.error!.message).toMatch(/schema id 32767/);
    expect(out[0]!.valueHex).toBe(garbage.toString('hex'));
    expect(out[1]!.error!.message).toMatch(/magic byte/);
    expect(out[1]!.valueHex).toBe(Buffer.from('not avro').toString('hex'));
    if (ok.partition === 0) expect(out[2]?.key).toBe(fresh.orderId);
    posted.push(ok);
  });

  it('ends quietly with exit 0 when the reader of its output goes away (| head -1)', async () => {
    const bin = `${process.execPath} --disable-warning=TimeoutNegativeWarning ${PROJECT_ROOT}/bin/sluice.js`;
    const shell = spawn('bash', ['-c', `${bin} tail ${topic} --from-beginning --format ndjson | head -1; echo "exit=\${PIPESTATUS[0]}" >&2`], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    shell.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    shell.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // A follower only notices the closed pipe on its next write: give it one.
    const nudge = setInterval(() => void post(randomOrder()).then((p) => posted.push(p)), 1000);
    const code = await new Promise<number | null>((resolve) => shell.once('exit', resolve));
    clearInterval(nudge);
    expect(code).toBe(0);
    expect(stdout.trim().split('\n')).toHaveLength(1);
    expect(stderr.trim()).toBe('exit=0');
  });

  it('writes to a pipe in blocking mode, from a pool thread', async () => {
    // Node makes a pipe or socket on fd 1 non-blocking once process.stdout exists (commander's require of node:process
    // creates it), and then every write is made on the main thread, 64 KiB at a time; the tail sets the fd back to
    // blocking and writes through an fs stream. The flags are the running tail's (Node restores them at exit).
    const child = spawn(process.execPath, ['--disable-warning=TimeoutNegativeWarning', `${PROJECT_ROOT}/bin/sluice.js`, 'tail', topic, '--from-beginning', '--format', 'ndjson'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    tailsRun++;
    try {
      const [first] = (await once(child.stdout, 'data')) as [Buffer];
      expect((parseJson(first.toString().split('\n')[0]!) as Line).topic).toBe(topic);
      const flags = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/${child.pid}/fdinfo/1`, 'utf8'))?.[1];
      expect(flags).toBeDefined();
      expect(parseInt(flags!, 8) & constants.O_NONBLOCK).toBe(0);
    } finally {
      child.kill('SIGINT');
      await once(child, 'exit');
    }
  });

  it('joins no consumer group and commits nothing', async () => {
    expect(tailsRun).toBeGreaterThanOrEqual(5);
    await withKafkaAdmin(async (admin) => {
      for (const { groupId } of await admin.listGroups()) {
        expect(groupId).not.toMatch(/^sluice-tail-/);
        expect(await admin.committedOffsets(groupId, [topic]), groupId).toEqual([]);
      }
    });
  });
});
