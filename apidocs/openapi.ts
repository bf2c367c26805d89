import { valueJsonSchema } from '../contracts/json-schema.ts';
import { topicByName, type Topology } from '../topology/model.ts';

/** OpenAPI 3.1 document of the ingress: one POST per route, its body the JSON Schema of the topic's contract (Avro, JSON Schema or Protobuf). */

type Json = Record<string, unknown>;

const ERROR = { $ref: '#/components/schemas/Error' };
const errorResponse = (description: string): Json => ({ description, content: { 'application/json': { schema: ERROR } } });

export function openApiDocument(topology: Topology, options: { title?: string; bodyLimit: number }): Json {
  const schemas: Json = {
    Accepted: {
      type: 'object',
      required: ['topic', 'partition', 'offset', 'schemaId'],
      properties: {
        topic: { type: 'string' },
        partition: { type: 'integer' },
        offset: { type: 'string', description: 'Kafka offset (64-bit, as a decimal string).' },
        schemaId: { type: 'integer', description: 'Registry id of the schema the event was encoded with.' },
      },
    },
    Error: {
      type: 'object',
      required: ['error', 'message'],
      properties: {
        error: { type: 'string', description: 'Stable code, e.g. SLUICE_VALIDATION_FAILED.' },
        message: { type: 'string' },
        path: { type: 'string', description: 'First offending field (validation errors).' },
        errors: {
          type: 'array',
          items: { type: 'object', properties: { index: { type: 'integer' }, path: { type: 'string' }, message: { type: 'string' } }, required: ['path', 'message'] },
        },
      },
    },
  };
  const paths: Json = {};
  for (const route of topology.routes) {
    const value = topicByName(topology, route.topic)?.valueSchema;
    if (!value) continue;
    const name = value.subject.replace(/[^A-Za-z0-9._-]/g, '_');
    schemas[name] = valueJsonSchema(value);
    const event = { $ref: `#/components/schemas/${name}` };
    paths[route.path] = {
      post: {
        operationId: `post${route.path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
        summary: `Produce events to ${route.topic}`,
        description: `Each event is checked against ${value.subject} and produced to ${route.topic}, keyed by its ${route.key}. A JSON array or an NDJSON body is a batch: written whole, or refused whole with every bad index named.`,
        parameters: [{ name: 'x-correlation-id', in: 'header', required: false, schema: { type: 'string', maxLength: 128 }, description: 'Echoed back and carried to Kafka as a header.' }],
        requestBody: {
          required: true,
          content: {
            'application/json': { schema: { oneOf: [event, { type: 'array', items: event }] } },
            'application/x-ndjson': { schema: { type: 'string', description: `One ${name} JSON object per line.` } },
          },
        },
        responses: {
          '200': {
            description: 'Acknowledged by Kafka (acks=all).',
            content: {
              'application/json': {
                schema: {
                  oneOf: [
                    { $ref: '#/components/schemas/Accepted' },
                    { type: 'object', required: ['results'], properties: { results: { type: 'array', items: { $ref: '#/components/schemas/Accepted' } } } },
                  ],
                },
              },
            },
          },
          '400': errorResponse('Malformed body or an event that does not satisfy the contract.'),
          '413': errorResponse(`Body larger than ${options.bodyLimit} bytes.`),
          '415': errorResponse('Content type other than application/json or application/x-ndjson.'),
          '503': {
            ...errorResponse('Kafka unreachable or the ingress is overloaded; retry after the given seconds.'),
            headers: { 'retry-after': { schema: { type: 'integer' }, description: 'Seconds to wait before retrying.' } },
          },
        },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: options.title ?? 'Sluice ingress', version: '1.0.0', description: 'HTTP routes that produce events to Kafka.' },
    paths,
    components: { schemas },
  };
}
