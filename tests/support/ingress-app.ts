import { avroCodecFromTypes } from '../../core/formats/index.ts';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { SLUICE_DENIALS, API_CHALLENGE } from '../../access/denials.ts';
import { installSecurity } from '../../access/plugin.ts';
import { ingressRouteTable } from '../../access/route-table.ts';
import { createTypes } from '../../core/formats/avro-types.ts';
import type { SluiceConfig } from '../../core/config.ts';
import type { Logger } from '../../core/logger.ts';
import { BatchingProducer, type OutgoingRecord } from '../../producers/batching-producer.ts';
import { JSON_TYPE, NDJSON_TYPE, registerBodyParsers } from '../../producers/body-parsers.ts';
import { registerProbes, type Readiness } from '../../producers/readiness.ts';
import { registerRoutes, type RouteBinding } from '../../producers/routes.ts';
import errorMapper from '../../core/http-errors.ts';
import { errorBody } from '../../producers/ingress-errors.ts';
import { topicByName, type Topology } from '../../topology/model.ts';

/**
 * The ingress's HTTP layer as startIngress assembles it (parsers, access
 * control, routes, error bodies) over an injected Kafka send, so properties
 * over thousands of requests run without a broker. Schema ids are 1, 2, ... in
 * route order.
 */
export async function ingressApp(
  config: SluiceConfig,
  topology: Topology,
  logger: Logger,
  options: { readiness?: Pick<Readiness, 'report'> } = {},
): Promise<{ app: FastifyInstance; sent: OutgoingRecord[]; bindings: RouteBinding[] }> {
  const sent: OutgoingRecord[] = [];
  const bindings: RouteBinding[] = topology.routes.map((route, i) => {
    const schema = topicByName(topology, route.topic)!.valueSchema!;
    return { route, subject: schema.subject, schemaId: i + 1, codec: avroCodecFromTypes(createTypes(schema.schema)) };
  });
  const producer = new BatchingProducer({
    // The seam's send: one RecordMetadata per record, offsets counted per topic.
    send: async (records) => {
      const next = new Map<string, bigint>();
      return records.map((record) => {
        sent.push(record);
        const offset = next.get(record.topic) ?? 0n;
        next.set(record.topic, offset + 1n);
        return { topic: record.topic, partition: record.partition ?? 0, offset };
      });
    },
    lingerMs: 0,
    batchMaxRecords: 1000,
    maxQueuedRecords: 100_000,
    timeoutMs: 2000,
    logger,
  });
  const app: FastifyInstance = Fastify({ loggerInstance: logger as FastifyBaseLogger, bodyLimit: config.bodyLimit });
  registerBodyParsers(app, config.jsonMaxDepth);
  const control = installSecurity(app, { service: 'ingress', config, logger, routes: ingressRouteTable(bindings.map((b) => b.route.path)), denials: SLUICE_DENIALS, challenge: API_CHALLENGE });
  await app.register(errorMapper, {
    service: 'ingress',
    bodyRules: { bodyLimit: config.bodyLimit, mediaTypes: [JSON_TYPE, NDJSON_TYPE] },
    answer: (failure) => ({ body: errorBody(failure) }),
    levels: { refused: 'debug', transient: 'debug' },
  });
  registerProbes(app, options.readiness ?? { report: async () => ({ ready: true, checks: {} }) }, control);
  app.get('/metrics', async () => '');
  registerRoutes(app, bindings, { producer });
  for (const path of ['/docs', '/docs/openapi.json', '/docs/asyncapi.json']) app.get(path, async () => ({}));
  // The HTTP read path streams from Kafka; here only its access rule matters.
  app.get('/v1/topics/:topic/records', async () => '');
  await app.ready();
  return { app, sent, bindings };
}
