/**
 * The Idempotency-Key layer of a checkout alone, in one process, for A/B of the layer's CPU and memory without Kafka,
 * HTTP or the rest of a shared machine's noise: Idempotency.forIngress over the real IdempotencyStore (its follower
 * never runs: claims are applied as acknowledged, as with one replica) and a producer acknowledging on the next turn.
 * 128 requests at a time, each with a fresh key; CPU µs per request of three rounds after `preload` keys are held
 * (the retention window's keys), and the heap after.
 *
 * With a second checkout, both layers run in this one process, rounds alternated (15 unless given), so both see the
 * same neighbours: the median of each and of the per-round ratios (second ÷ first). On a busy shared machine two
 * processes run a minute apart differed by more than the change being measured.
 *
 *   node bench/idempotency-micro.ts <checkout> <preload> <requests per round> [<other checkout> [rounds]]
 */
import { hash } from 'node:crypto';
const [root, preloadArg, requestsArg, otherRoot, roundsArg] = process.argv.slice(2);

interface Layer {
  root: string;
  one(key: string): Promise<unknown>;
}

async function layer(root: string): Promise<Layer> {
  const { Idempotency, fingerprint, scopeOf } = await import(`${root}/producers/idempotency.ts`);
  const { IdempotencyStore } = await import(`${root}/producers/idempotency-claims.ts`);
  const { loadConfig } = await import(`${root}/core/config.ts`);
  const { createLogger } = await import(`${root}/core/logger.ts`);
  const config = loadConfig({ SLUICE_LOG_LEVEL: 'silent' });
  const reader = { readAt: async () => undefined, readFrom: async () => undefined, close: async () => undefined };
  const store = new IdempotencyStore({ partitionReader: () => reader } as never, {} as never, config, createLogger(config, 'micro'));
  const view = {
    started: true,
    topic: 'claims',
    start: async () => undefined,
    has: (k: string) => store.has(k),
    held: (k: string) => store.held(k),
    current: (k: string) => store.current(k),
    holds: (k: string, r: unknown) => store.holds(k, r),
    wrote: (v: unknown, at: number, p: number, o: bigint) => store.wrote(v, at, p, o),
    fingerprintOf: (r: unknown) => store.fingerprintOf(r),
    written: () => Promise.resolve(new Map()),
    expired: () => false,
  };
  const offsets = new Map<string, bigint>();
  let pending: { records: { topic: string }[]; resolve: (a: unknown[]) => void }[] = [];
  function flush(): void {
    const list = pending;
    pending = [];
    for (const p of list)
      p.resolve(
        p.records.map(({ topic }) => {
          const offset = offsets.get(topic) ?? 0n;
          offsets.set(topic, offset + 1n);
          return { topic, partition: 0, offset: String(offset) };
        }),
      );
  }
  // Acknowledged on a later turn, several requests' records together, as the batching producer does.
  const events = {
    produce(records: { topic: string }[]): Promise<{ topic: string; partition: number; offset: string }[]> {
      return new Promise((resolve) => {
        if (pending.length === 0) setImmediate(flush);
        pending.push({ records, resolve: resolve as never });
      });
    },
  };
  const idempotency = Idempotency.forIngress(view as never, events as never, config);
  return {
    root,
    one: (key) =>
      idempotency.produce(scopeOf('/v1/orders', 'anonymous', key), fingerprint(false, body), {
        records: [{ topic: 't', key: Buffer.from('o-1'), value: body, headers }],
        answer: (acks: unknown[]) => ({ status: 200, body: acks }),
      }),
  };
}

const body = Buffer.from(JSON.stringify({ orderId: 'o-123456', customerId: 'c-1', items: [{ sku: 'SKU-1', quantity: 1, unitPrice: 5 }], amount: 5, currency: 'EUR', placedAt: 1767225600000 }));
const headers = [
  ['correlation-id', Buffer.from('req-1')],
  ['content-type', Buffer.from('application/vnd.sluice.avro')],
];
let n = 0;

async function run(l: Layer, count: number, prefix: string): Promise<number> {
  const before = process.cpuUsage();
  let started = 0;
  await Promise.all(
    Array.from({ length: 128 }, async () => {
      while (started < count) {
        started++;
        await l.one(`${prefix}-${hash('md5', String(n++), 'hex')}`);
      }
    }),
  );
  const used = process.cpuUsage(before);
  return (used.user + used.system) / count;
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const requests = Number(requestsArg);
if (otherRoot === undefined) {
  const l = await layer(root!);
  await run(l, Number(preloadArg), 'preload');
  const figures: number[] = [];
  for (let r = 0; r < 3; r++) figures.push(await run(l, requests, `r${r}`));
  console.log(
    `${root} preload ${preloadArg}: ${figures.map((f) => f.toFixed(2)).join(' ')} µs CPU/request (median ${median(figures).toFixed(2)}), heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB`,
  );
} else {
  const layers = [await layer(root!), await layer(otherRoot)];
  for (const l of layers) await run(l, Number(preloadArg), `preload-${l.root}`);
  const figures: number[][] = [[], []];
  const rounds = Number(roundsArg ?? 15);
  for (let r = 0; r < rounds; r++) for (const i of r % 2 === 0 ? [0, 1] : [1, 0]) figures[i]!.push(await run(layers[i]!, requests, `r${r}-${i}`));
  layers.forEach((l, i) => console.log(`${l.root} preload ${preloadArg}: median ${median(figures[i]!).toFixed(2)} µs CPU/request (${figures[i]!.map((f) => f.toFixed(2)).join(' ')})`));
  const ratios = figures[1]!.map((v, r) => v / figures[0]![r]!);
  console.log(`${otherRoot} ÷ ${root}: median ${median(ratios).toFixed(3)} (${ratios.map((v) => v.toFixed(2)).join(' ')})`);
}
