import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { libsDir } from '../../broker/jars.ts';
import { describeTopic, listTopics } from '../../console/cluster.ts';
import { defineWorker } from '../../consumers/handler.ts';
import { scoreOrder } from '../../consumers/workers/score-orders.ts';
import { parseJson } from '../../core/json.ts';
import { retryPolicies } from '../../core/retry.ts';
import { RegistryClient } from '../../core/registry-client.ts';
import type { KafkaProducer, RecordHeaders } from '../../kafka/index.ts';
import { startIngress, type Ingress } from '../../producers/server.ts';
import type { OrderPlaced } from '../../schemas/generated/OrderPlaced.ts';
import type { OrderScored } from '../../schemas/generated/OrderScored.ts';
import { headerMap } from '../../reads/decode.ts';
import { hasKcat } from '../support/kcat.ts';
import { orderTopology } from '../support/order-topology.ts';
import { randomOrder } from '../support/orders.ts';
import { brokers, createTestTopics, seam, testConfig, uniqueName } from '../support/platform.ts';
import { tailToEnd } from '../support/tail.ts';
import { deadLettersOf, outputsOf, workerHarness, type WorkerHarness } from '../support/workers.ts';

/**
 * One codec for every read and write: records written by other clients —
 * librdkafka (kcat, every compression codec, repeated header names, empty and
 * null header values) and Kafka's Java console producer — and by a
 * transactional producer (one committed transaction, one aborted) read the
 * same through `sluice tail`, the HTTP read path and an exactly-once worker,
 * and the worker's transactional output (its dead letters carry the input's
 * headers) keeps every header, repeated names in order.
 */

type Pairs = [string, string | null][];
interface Line {
  topic: string;
  partition: number;
  offset: string;
  timestamp: string;
  key: unknown;
  value: unknown;
  headers: Pairs;
  error?: { code: string; message: string };
  valueHex?: string;
}
interface Written {
  key: string;
  headers: Pairs;
  /** A framed OrderPlaced the worker handles; else bytes it dead-letters. */
  avro: boolean;
}

const CODECS = ['gzip', 'snappy', 'lz4', 'zstd'] as const;
/** Every header shape Kafka allows: a repeated name (values in order, another name between), an empty value, a null value. */
const KCAT_HEADERS: Pairs = [
  ['a', '1'],
  ['b', 'x'],
  ['a', '2'],
  ['e', ''],
  ['n', null],
];

const text = (headers: RecordHeaders): Pairs => headers.map(([name, value]) => [name, value === null ? null : value.toString('utf8')]);
const lines = (stdout: string): Line[] =>
  stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => parseJson(l) as Line);

function kcatProduce(topic: string, codec: string, key: string, headers: Pairs, value: Buffer, dir: string): void {
  const file = join(dir, `${key}.bin`);
  writeFileSync(file, value);
  const h = headers.flatMap(([name, v]) => ['-H', v === null ? name : `${name}=${v}`]);
  // A file argument is one message, bytes as they are (a framed Avro value may hold any byte).
  const result = spawnSync('kcat', ['-P', '-b', brokers().join(','), '-t', topic, '-p', '0', '-z', codec, '-k', key, ...h, file], { timeout: 30_000 });
  if (result.status !== 0) throw new Error(`kcat -P failed: ${result.stderr.toString()}`);
}

/** Kafka's own console producer (Java), headers parsed from the line: `a:1,a:2,e:,n:NULL<TAB>key<TAB>value`. */
function javaProduce(topic: string, codec: string, key: string, value: string): void {
  const config = testConfig();
  const libs = libsDir({ cacheDir: config.kafkaCacheDir, version: config.kafkaVersion });
  const result = spawnSync(
    'java',
    [
      '-cp',
      `${libs}/*`,
      'org.apache.kafka.tools.ConsoleProducer',
      '--bootstrap-server',
      brokers().join(','),
      '--topic',
      topic,
      '--compression-codec',
      codec,
      '--property',
      'parse.key=true',
      '--property',
      'parse.headers=true',
      '--property',
      'null.marker=NULL',
    ],
    { input: `a:1,b:x,a:2,e:,n:NULL\t${key}\t${value}\n`, timeout: 90_000 },
  );
  if (result.status !== 0) throw new Error(`kafka console producer failed: ${result.stderr.toString()}`);
}

describe.skipIf(!hasKcat)('one record codec: what other clients wrote reads the same everywhere', () => {
  let h: WorkerHarness;
  let ingress: Ingress;
  let transactional: KafkaProducer;
  let dir: string;
  const run = uniqueName('codec');
  const written: Written[] = [];
  const abortedKey = `${run}-aborted`;
  const handled: { offset: string; key: string | null; headers: Record<string, string> }[] = [];

  beforeAll(async () => {
    h = await workerHarness({ partitions: 1 });
    const input = h.spec.input;
    dir = mkdtempSync(join(tmpdir(), 'sluice-codec-'));

    for (const codec of CODECS) {
      const key = `${run}-kcat-${codec}`;
      kcatProduce(input, codec, key, [...KCAT_HEADERS, ['codec', codec]], h.orders.encode(randomOrder({ orderId: key })), dir);
      written.push({ key, headers: [...KCAT_HEADERS, ['codec', codec]], avro: true });
    }
    const poison = `${run}-kcat-poison`;
    kcatProduce(input, 'zstd', poison, KCAT_HEADERS, Buffer.from('not a framed Avro record'), dir);
    written.push({ key: poison, headers: KCAT_HEADERS, avro: false });

    const javaKey = `${run}-java`;
    javaProduce(input, 'zstd', javaKey, '{"written":"by the Java console producer"}');
    written.push({ key: javaKey, headers: KCAT_HEADERS, avro: false });

    // A committed transaction, then an aborted one: its other record is larger than its topic allows, so the send fails and it aborts.
    transactional = seam('sluice-test-codec-tx').producer({ transactionalId: uniqueName('codec-tx'), retry: retryPolicies.transaction });
    const committedKey = `${run}-tx-committed`;
    const txHeaders: Pairs = [
      ['t', 'committed'],
      ['a', '1'],
      ['a', '2'],
    ];
    await transactional.sendTransaction([
      {
        topic: input,
        partition: 0,
        key: Buffer.from(committedKey),
        value: h.orders.encode(randomOrder({ orderId: committedKey })),
        headers: txHeaders.map(([n, v]) => [n, v === null ? null : Buffer.from(v)]),
      },
    ]);
    written.push({ key: committedKey, headers: txHeaders, avro: true });
    const tiny = uniqueName('codec-tiny');
    await createTestTopics([{ name: tiny, partitions: 1, configs: { 'max.message.bytes': '1024' } }]);
    await expect(
      transactional.sendTransaction([
        { topic: input, partition: 0, key: Buffer.from(abortedKey), value: h.orders.encode(randomOrder({ orderId: abortedKey })), headers: [['t', Buffer.from('aborted')]] },
        { topic: tiny, partition: 0, value: Buffer.alloc(4096) },
      ]),
    ).rejects.toThrow();

    // A plain record after the aborted transaction, so every reader reads past it.
    const last = `${run}-kcat-last`;
    kcatProduce(input, 'lz4', last, [['a', '3']], Buffer.from('after the transactions'), dir);
    written.push({ key: last, headers: [['a', '3']], avro: false });

    ingress = await startIngress({ config: h.config, logger: h.logger, topology: orderTopology(input, 1), registry: new RegistryClient(h.registry.url), port: 0 });
    const handler = defineWorker<OrderPlaced, OrderScored>((order, context) => {
      handled.push({ offset: context.offset, key: context.key, headers: { ...context.headers } });
      return scoreOrder(order, context.timestamp);
    });
    await h.start(handler, { delivery: 'exactly-once' });
  }, 240_000);

  afterAll(async () => {
    await ingress?.close();
    await transactional?.close();
    await h?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("the console calls high - low an offset span: the topic's 8 records span 11 offsets (a commit marker, an aborted record, an abort marker)", async () => {
    const admin = seam('sluice-test-codec-console').admin();
    try {
      const detail = await describeTopic(admin, h.spec.input);
      expect(detail.partitions.map((p) => [p.low, p.high, p.offsetSpan])).toEqual([['0', '11', 11]]);
      expect((await listTopics(admin)).find((t) => t.name === h.spec.input)).toEqual({ name: h.spec.input, partitions: 1, offsetSpan: 11 });
    } finally {
      await admin.close();
    }
    expect(written).toHaveLength(8);
  });

  it('tail, the read path and a worker read every header, value and offset alike; control records and the aborted transaction nowhere', async () => {
    const count = written.length;
    const env = { KAFKA_BROKERS: brokers().join(','), SLUICE_REGISTRY_URL: h.registry.url, SLUICE_LOG_LEVEL: 'warn' };
    const tail = await tailToEnd([h.spec.input, '--from-beginning', '--max', String(count), '--format', 'ndjson', '--headers'], env, 60_000);
    expect(tail.code, tail.stderr).toBe(0);
    const tailed = lines(tail.stdout);

    const response = await fetch(`${ingress.url}/v1/topics/${h.spec.input}/records?from=beginning&max=${count}`);
    expect(response.status).toBe(200);
    const read = lines(await response.text());

    // Identical lines, in the same (offset) order, through both readers.
    expect(read).toEqual(tailed);
    expect(tailed.map((l) => l.key)).toEqual(written.map((w) => w.key));
    for (const [i, w] of written.entries()) {
      const line = tailed[i]!;
      expect(line.headers, w.key).toEqual(w.headers);
      if (w.avro) expect((line.value as { orderId: string }).orderId).toBe(w.key);
      else expect(line.error?.code, w.key).toBe('SLUICE_DECODE_FAILED');
    }
    // Offsets skip the commit marker (7), the aborted record (8) and its abort marker (9): nobody reads them.
    expect(tailed.map((l) => l.offset)).toEqual(['0', '1', '2', '3', '4', '5', '6', '10']);
    expect(tail.stdout).not.toContain(abortedKey);

    // The worker: it handles the Avro ones with the same offsets and headers (by name, the last value, null as ''), dead-letters the others.
    const avro = tailed.filter((l) => !l.error);
    const all = await h.collector.waitFor((rs) => outputsOf(h, rs).length >= avro.length && deadLettersOf(h, rs).length >= count - avro.length, 60_000, 'outputs and dead letters');
    expect(handled.map((r) => r.offset)).toEqual(avro.map((l) => l.offset));
    for (const [i, r] of handled.entries()) {
      expect(r.key).toBe(avro[i]!.key);
      expect(r.headers).toEqual(Object.fromEntries(Object.entries(headerMap(avro[i]!.headers)).map(([n, v]) => [n, v ?? ''])));
    }
    expect(outputsOf(h, all).map((r) => r.key?.toString())).toEqual(avro.map((l) => l.key));
    expect(all.some((r) => r.key?.toString() === abortedKey)).toBe(false);

    // Its exactly-once output keeps every header of a dead-lettered input: repeated names in order, empty and null values as they were.
    const dead = deadLettersOf(h, all);
    expect(dead.map((r) => r.key?.toString())).toEqual(written.filter((w) => !w.avro).map((w) => w.key));
    for (const [i, w] of written.filter((x) => !x.avro).entries()) {
      const headers = text(dead[i]!.headers);
      expect(headers.slice(0, w.headers.length), w.key).toEqual(w.headers);
      expect(headers.slice(w.headers.length).map(([name]) => name.split('.')[0])).toEqual(Array(headers.length - w.headers.length).fill('sluice'));
    }
  });
});
