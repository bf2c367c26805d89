import type { AddressInfo } from 'node:net';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import Fastify from 'fastify';
import { Kafka, logLevel, Partitioners } from 'kafkajs';

/**
 * The obvious hand-written service Sluice is compared with: Fastify, kafkajs and
 * the Confluent registry client, one awaited producer.send per request. It does
 * the same work per event as the ingress (validate against the registered Avro
 * schema, encode in the Confluent wire format, acks=all, idempotent) and answers
 * with the offsets, but without coalescing requests into shared produce calls.
 *
 * Configured by environment: NAIVE_BROKERS, NAIVE_REGISTRY_URL, NAIVE_TOPIC,
 * NAIVE_SUBJECT, NAIVE_PORT (0: any), NAIVE_PATH. Prints its url when ready.
 */

function env(name: string, fallback?: string): string {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') throw new Error(`${name} is not set`);
  return value;
}

const topic = env('NAIVE_TOPIC');
const subject = env('NAIVE_SUBJECT', `${topic}-value`);
const path = env('NAIVE_PATH', '/v1/orders');

const registry = new SchemaRegistry({ host: env('NAIVE_REGISTRY_URL') });
const schemaId = await registry.getLatestSchemaId(subject);
const { schema } = (await (await fetch(`${env('NAIVE_REGISTRY_URL')}/schemas/ids/${schemaId}`)).json()) as { schema: string };
const type = avro.Type.forSchema(JSON.parse(schema) as avro.Schema, { wrapUnions: 'auto' });

const kafka = new Kafka({ clientId: 'naive-service', brokers: env('NAIVE_BROKERS').split(','), logLevel: logLevel.ERROR });
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
await producer.connect();

const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });

app.post(path, async (request, reply) => {
  const events = Array.isArray(request.body) ? (request.body as unknown[]) : [request.body];
  const bad: number[] = [];
  events.forEach((event, i) => {
    if (!type.isValid(event)) bad.push(i);
  });
  if (bad.length > 0) return reply.code(400).send({ error: 'invalid', indexes: bad });
  const messages = await Promise.all(events.map(async (event) => ({ key: String((event as { orderId: unknown }).orderId), value: await registry.encode(schemaId, event) })));
  const metadata = await producer.send({ topic, acks: -1, messages });
  const first = metadata[0];
  return Array.isArray(request.body) ? { results: metadata } : { topic, partition: first?.partition, offset: first?.baseOffset, schemaId };
});

await app.listen({ host: '127.0.0.1', port: Number(env('NAIVE_PORT', '0')) });
const address = app.server.address() as AddressInfo;
// The marker bench/common.ts's spawnBench waits for.
process.stdout.write(`@@sluice-bench ${JSON.stringify({ url: `http://127.0.0.1:${address.port}` })}\n`);

const stop = (): void => {
  app
    .close()
    .then(() => producer.disconnect())
    .then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`naive service stop failed: ${String(error)}\n`);
        process.exit(1);
      },
    );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
