import type { FastifyInstance } from 'fastify';
import { asyncApiDocument } from '../apidocs/asyncapi.ts';
import { docsPage } from '../apidocs/html.ts';
import { openApiDocument } from '../apidocs/openapi.ts';
import { bootstrapServers, type SluiceConfig } from '../core/config.ts';
import type { Topology } from '../topology/model.ts';

/**
 * /docs on the ingress: the OpenAPI 3.1 and AsyncAPI 3 documents of the
 * topology and a readable page. Built once at start: the topology does not
 * change while the process runs.
 */
export function registerDocs(app: FastifyInstance, topology: Topology, config: SluiceConfig): void {
  const openapi = JSON.stringify(openApiDocument(topology, { bodyLimit: config.bodyLimit }));
  const asyncapi = JSON.stringify(asyncApiDocument(topology, { brokers: bootstrapServers(config) }));
  const page = docsPage(topology);
  app.get('/docs', async (_request, reply) => reply.type('text/html; charset=utf-8').send(page));
  app.get('/docs/openapi.json', async (_request, reply) => reply.type('application/json').send(openapi));
  app.get('/docs/asyncapi.json', async (_request, reply) => reply.type('application/json').send(asyncapi));
}
