import { readFileSync } from 'node:fs';
import { PROJECT_ROOT } from '../core/config.ts';
import { argValue, eventPool, median } from './common.ts';

/**
 * The ingress's in-process work per event, another checkout's against this one, without HTTP or a broker: parse
 * the body, validate, build the records (encode and frame), place them, write the produce request, derive each
 * record's offset from the response's base offsets, and write the answer. CPU µs per event (process.cpuUsage) for
 * single events and batches of 100, the checkouts alternated, median of the rounds: steadier than an HTTP A/B on a
 * shared machine, whose broker and neighbours move events/s. Both checkouts must give the same answer text.
 *
 *   node bench/ingress-stages.ts <other checkout> [--rounds 15]
 */

interface Checkout {
  root: string;
  run(body: string): string;
}

const SCHEMA = readFileSync(`${PROJECT_ROOT}/schemas/OrderPlaced.avsc`, 'utf8');
const ROUTE = { path: '/v1/orders', topic: 'orders.placed', key: 'orderId' };
const PARTITIONS = 6;

// Each checkout's own modules; only functions every revision since a769f6e exports.
/* eslint-disable @typescript-eslint/no-explicit-any */
async function load(root: string): Promise<Checkout> {
  const { createCodec } = await import(`${root}/core/formats/index.ts`);
  const routes = await import(`${root}/producers/routes.ts`);
  const { Placer, recordOffsets } = await import(`${root}/kafka/producer.ts`);
  const { encodeProduceRequest } = await import(`${root}/kafka/produce-request.ts`);
  const { toClientMessage } = await import(`${root}/kafka/record-codec.ts`);
  const { parseJsonBody } = await import(`${root}/producers/body-parsers.ts`);
  const codec = createCodec({ schemaType: 'AVRO', schema: SCHEMA, references: [] });
  const binding = { route: ROUTE, subject: 'orders.placed-value', schemaId: 7, codec, schemaText: SCHEMA };
  const placer = new Placer();
  const bases = Array.from({ length: PARTITIONS }, (_, partition) => ({ topic: ROUTE.topic, partition, offset: 1000n }));
  return {
    root,
    run(body) {
      const { events, batch } = parseJsonBody(body);
      routes.checkEvents(codec, events, batch);
      const records = routes.toRecords(binding, events, 'd0c5c7e2-4a4e-4bf3-9f7e-3f1b0c2a9e11');
      const placement = placer.place(records, () => PARTITIONS);
      const messages = records.map((r: any, i: number) => toClientMessage(r, placement.partitions[i]));
      encodeProduceRequest(-1, 30_000, messages, { producerId: 1n, producerEpoch: 0 });
      const acks = recordOffsets(records, placement, bases).map((m: any) => ({ topic: m.topic, partition: m.partition, offset: m.offset.toString() }));
      // The answer as each checkout writes it: text directly where it can, else its answer objects serialised.
      return routes.atomicAnswerText ? routes.atomicAnswerText(acks, 7, batch) : JSON.stringify(routes.prepareAtomic(binding, events, batch, 'cid', undefined, undefined, true).answer(acks).body);
    },
  };
}
/* eslint-enable @typescript-eslint/no-explicit-any */

const args = process.argv.slice(2);
const other = args[0];
if (other === undefined || other.startsWith('--')) throw new Error('usage: node bench/ingress-stages.ts <other checkout> [--rounds 15]');
const rounds = Number(argValue(args, '--rounds') ?? 15);
const checkouts = [await load(other), await load(PROJECT_ROOT)];
const pool = eventPool();
for (const body of [pool.singleBodies[0]!, pool.batchBodies[0]!]) {
  if (checkouts[0]!.run(body) !== checkouts[1]!.run(body)) throw new Error('the two checkouts answer differently');
}
const perEvent: Record<string, number[]> = {};
for (let round = 0; round < rounds; round++) {
  for (const [shape, bodies, per] of [
    ['single events', pool.singleBodies, 1],
    ['batches of 100', pool.batchBodies, 100],
  ] as const) {
    for (let i = 0; i < checkouts.length; i++) {
      const checkout = checkouts[(round + i) % checkouts.length]!;
      const calls = per === 1 ? 4000 : 80;
      const start = process.cpuUsage();
      for (let j = 0; j < calls; j++) checkout.run(bodies[j % bodies.length]!);
      const used = process.cpuUsage(start);
      (perEvent[`${shape}, ${checkout.root}`] ??= []).push((used.user + used.system) / (calls * per));
    }
  }
}
for (const [name, values] of Object.entries(perEvent)) console.log(`${name.padEnd(48)} ${median(values).toFixed(2)} µs CPU per event (median of ${rounds})`);
