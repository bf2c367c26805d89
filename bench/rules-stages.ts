import { readFileSync } from 'node:fs';
import { PROJECT_ROOT } from '../core/config.ts';
import { argValue, eventPool } from './common.ts';

/**
 * Issue 21's difference in one process, without HTTP or a broker: a produce request through routes.ts produceRequest
 * (parse, validation, the route's WRITE rules, records, the answer) with the bench's three rules (bench/rules-profile.ts)
 * against the same request without rules, and with each rule alone; the producer places the records, writes the produce
 * request and derives the offsets (as bench/ingress-stages.ts), and holds the last 128 requests' records, as 128
 * connections keep that much in flight. bench/rules-ab.ts times runWriteRules in a tight loop; here the rules run
 * between the other stages, with the caches those leave. Each side runs a chunk of requests (≈3 ms) in turn, order
 * rotated, so all see the machine's neighbours and the heap's GC at the same moments; CPU µs per event
 * (process.cpuUsage) per chunk, then the 10th, 25th and 50th percentile of the chunks per side: the low percentiles
 * are the sides' own cost on a busy machine, where the medians of whole runs moved by ±0.5 µs. With another checkout,
 * its sides too.
 *
 *   node bench/rules-stages.ts [<other checkout>] [--chunks 300] [--only 'no rules,rules']
 */

interface Side {
  name: string;
  run(body: Buffer): Promise<unknown>;
}

const SCHEMA = readFileSync(`${PROJECT_ROOT}/schemas/OrderPlaced.avsc`, 'utf8');
const ROUTE = { path: '/v1/orders', topic: 'orders.placed', key: 'orderId' };
const PARTITIONS = 6;
const IN_FLIGHT = 128;

// Each checkout's own modules (the same functions bench/ingress-stages.ts loads, and produceRequest).
/* eslint-disable @typescript-eslint/no-explicit-any */
async function load(root: string): Promise<Side[]> {
  const { createCodec } = await import(`${root}/core/formats/index.ts`);
  const routes = await import(`${root}/producers/routes.ts`);
  const rules = await import(`${root}/rules/index.ts`);
  const profile = await import(`${root}/bench/rules-profile.ts`);
  const { Placer, recordOffsets } = await import(`${root}/kafka/producer.ts`);
  const { encodeProduceRequest } = await import(`${root}/kafka/produce-request.ts`);
  const { toClientMessage } = await import(`${root}/kafka/record-codec.ts`);
  const { parseJsonBody, receiveBody } = await import(`${root}/producers/body-parsers.ts`);
  const codec = createCodec({ schemaType: 'AVRO', schema: SCHEMA, references: [] });
  const binding = { route: ROUTE, subject: 'orders.placed-value', schemaId: 7, codec, schemaText: SCHEMA };
  const placer = new Placer();
  const bases = Array.from({ length: PARTITIONS }, (_, partition) => ({ topic: ROUTE.topic, partition, offset: 1000n }));
  const inFlight: unknown[] = new Array(IN_FLIGHT);
  let slot = 0;
  const producer = {
    produce(records: any[]) {
      inFlight[slot++ % IN_FLIGHT] = records;
      const placement = placer.place(records, () => PARTITIONS);
      encodeProduceRequest(
        -1,
        30_000,
        records.map((r: any, i: number) => toClientMessage(r, placement.partitions[i])),
        { producerId: 1n, producerEpoch: 0 },
      );
      return Promise.resolve(recordOffsets(records, placement, bases).map((m: any) => ({ topic: m.topic, partition: m.partition, offset: m.offset.toString() })));
    },
  };
  const contract = (domainRules: unknown[]) => new rules.CompiledContract({ subject: binding.subject, version: 1, id: 7, codec, metadata: profile.RULES_METADATA, ruleSet: { domainRules } });
  const side = (name: string, current: unknown): Side => {
    const context = { producer, contracts: { of: () => current } };
    const parse = (text: string) => parseJsonBody(text);
    return { name: `${root} ${name}`, run: (body) => routes.produceRequest(context, binding, receiveBody(body, parse), { id: 'cid', key: undefined, principal: undefined, partial: false }) };
  };
  return [
    side('no rules', { schemaId: 7, contract: undefined }),
    side('rules', { schemaId: 7, version: 1, contract: contract(profile.BENCH_RULES) }),
    ...profile.BENCH_RULES.map((rule: { name: string }) => side(rule.name, { schemaId: 7, version: 1, contract: contract([rule]) })),
  ];
}
/* eslint-enable @typescript-eslint/no-explicit-any */

const args = process.argv.slice(2);
const other = args[0] !== undefined && !args[0].startsWith('--') ? args[0] : undefined;
const chunks = Number(argValue(args, '--chunks') ?? 300);
const only = argValue(args, '--only')?.split(',');
const sides = [...(other === undefined ? [] : await load(other)), ...(await load(PROJECT_ROOT))].filter((s) => only === undefined || only.includes(s.name.slice(s.name.indexOf(' ') + 1)));
const pool = eventPool();
const batches = pool.batchBodies.map((b) => Buffer.from(b));
const singles = pool.singleBodies.map((b) => Buffer.from(b));
for (let w = 0; w < 3; w++) for (const side of sides) for (const body of batches) await side.run(body);
const percentile = (values: number[], p: number): number => [...values].sort((a, b) => a - b)[Math.floor(values.length * p)]!;
for (const [shape, bodies, perRequest, perChunk] of [
  ['batches of 100', batches, 100, 10],
  ['single events', singles, 1, 500],
] as const) {
  const perEvent = sides.map(() => [] as number[]);
  for (let c = 0; c < chunks; c++) {
    for (let k = 0; k < sides.length; k++) {
      const i = (c + k) % sides.length;
      const start = process.cpuUsage();
      for (let j = 0; j < perChunk; j++) await sides[i]!.run(bodies[(c * perChunk + j) % bodies.length]!);
      const used = process.cpuUsage(start);
      perEvent[i]!.push((used.user + used.system) / (perChunk * perRequest));
    }
  }
  sides.forEach((side, i) => {
    const [p10, p25, p50] = [0.1, 0.25, 0.5].map((p) => percentile(perEvent[i]!, p).toFixed(3));
    console.log(`${shape}, ${side.name}`.padEnd(64), `p10 ${p10}  p25 ${p25}  p50 ${p50} µs CPU per event (${chunks} chunks)`);
  });
}
