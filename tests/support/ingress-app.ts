import { avroCodecFromTypes } from '../../core/formats/index.ts';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { SLUICE_DENIALS, API_CHALLENGE } from '../../access/denials.ts';
import { installSecurity } from '../../access/plugin.ts';
import { ingressRouteTable } from '../../access/route-table.ts';
import { createTypes } from '../../core/avro.ts';
import type { SluiceConfig } from '../../core/config.ts';
import type { Logger } from '../../core/logger.ts';
import { BatchingProducer, type OutgoingRecord } from '../../producers/batching-producer.ts';
import { registerBodyParsers } from '../../producers/body-parsers.ts';
import { registerRoutes, type RouteBinding } from '../../producers/routes.ts';
import { errorBody, toSluiceError } from '../../producers/server.ts';
import { topicByName, type Topology } from '../../topology/model.ts';

/**
 * The ingress's HTTP layer as startIngress assembles it (parsers, access
 * control, routes, error bodies) over an injected Kafka send, so properties
 * over thousands of requests run without a broker. Schema ids are 1, 2, ... in
 * route order.
 */
export async function ingressApp(config: SluiceConfig, topology: Topology, logger: Logger): Promise<{ app: FastifyInstance; sent: OutgoingRecord[]; bindings: RouteBinding[] }> {
  const sent: OutgoingRecord[] = [];
  const bindings: RouteBinding[] = topology.routes.map((route, i) => {
    const schema = topicByName(topology, route.topic)!.valueSchema!;
    return { route, subject: schema.subject, schemaId: i + 1, codec: avroCodecFromTypes(createTypes(schema.schema)) };
  });
  const producer = new BatchingProducer({
    send: async (batch) => {
      const acks = [];
      for (const tm of batch.topicMessages ?? []) {
        for (const m of tm.messages) {
          sent.push({ topic: tm.topic, key: m.key as string | null, value: m.value as Buffer, headers: m.headers as Record<string, string> });
        }
        acks.push({ topicName: tm.topic, partition: 0, errorCode: 0, baseOffset: String(sent.length - tm.messages.length) });
      }
      return acks;
    },
    partitionCount: async () => 1,
    lingerMs: 0,
    batchMaxRecords: 1000,
    maxQueuedRecords: 100_000,
    timeoutMs: 2000,
    logger,
  });
  const app: FastifyInstance = Fastify({ loggerInstance: logger as FastifyBaseLogger, bodyLimit: config.bodyLimit });
  registerBodyParsers(app);
  installSecurity(app, { service: 'ingress', config, logger, routes: ingressRouteTable(bindings.map((b) => b.route.path)), denials: SLUICE_DENIALS, challenge: API_CHALLENGE });
  app.setErrorHandler((error, _request, reply) => {
    const failure = toSluiceError(error, config.bodyLimit);
    return reply.code(failure.statusCode).send(errorBody(failure));
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async () => ({ status: 'ready' }));
  app.get('/metrics', async () => '');
  registerRoutes(app, bindings, producer);
  for (const path of ['/docs', '/docs/openapi.json', '/docs/asyncapi.json']) app.get(path, async () => ({}));
  await app.ready();
  return { app, sent, bindings };
}
