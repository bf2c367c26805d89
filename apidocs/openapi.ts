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
        parameters: [
          { name: 'x-correlation-id', in: 'header', required: false, schema: { type: 'string', maxLength: 128 }, description: 'Echoed back and carried to Kafka as a header.' },
          {
            name: 'idempotency-key',
            in: 'header',
            required: false,
            schema: { type: 'string', maxLength: 257 },
            description: 'IETF httpapi idempotency-key draft: the same key and body within the retention window get the original response (header idempotent-replayed: true) and write nothing.',
          },
          { name: 'partial', in: 'query', required: false, schema: { type: 'boolean' }, description: 'true: write the valid events of a batch and answer 207 with one result per index.' },
        ],
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
          '207': {
            description: 'partial=true: one result per index, written (partition and offset) or refused (errors by field path).',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['produced', 'failed', 'results'],
                  properties: { produced: { type: 'integer' }, failed: { type: 'integer' }, results: { type: 'array', items: { type: 'object', required: ['index', 'status'] } } },
                },
              },
            },
          },
          '400': errorResponse('Malformed body or an event that does not satisfy the contract.'),
          '409': errorResponse('A request with this Idempotency-Key is still in progress.'),
          '422': errorResponse('This Idempotency-Key was used with a different request.'),
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
  paths['/v1/topics/{topic}/records'] = {
    get: {
      operationId: 'readRecords',
      summary: 'Read a topic: NDJSON, or Server-Sent Events with Accept: text/event-stream',
      description: 'Stateless (no consumer group), read_committed, decoded through the registry. SSE event ids hold every partition position; Last-Event-ID resumes exactly.',
      parameters: [
        { name: 'topic', in: 'path', required: true, schema: { type: 'string', enum: topology.topics.map((t) => t.name) } },
        { name: 'from', in: 'query', required: false, schema: { type: 'string', default: 'end' }, description: 'beginning, end, an offset or an ISO-8601 time.' },
        { name: 'partition', in: 'query', required: false, schema: { type: 'integer', minimum: 0 } },
        { name: 'max', in: 'query', required: false, schema: { type: 'integer', minimum: 1 }, description: 'Ends the stream after this many records.' },
        { name: 'where', in: 'query', required: false, schema: { type: 'string', maxLength: 1024 }, description: 'A filter in the `sluice tail --where` language.' },
        { name: 'last-event-id', in: 'header', required: false, schema: { type: 'string' }, description: 'Positions to resume from, e.g. p0:124,p1:45.' },
      ],
      responses: {
        '200': {
          description: 'The records, one per line (NDJSON) or one per event (SSE).',
          content: { 'application/x-ndjson': { schema: { type: 'string' } }, 'text/event-stream': { schema: { type: 'string' } } },
        },
        '400': errorResponse('A bad parameter, named in the message.'),
        '404': errorResponse('No such topic in the topology.'),
      },
    },
  };
  return {
    openapi: '3.1.0',
    info: { title: options.title ?? 'Sluice ingress', version: '1.0.0', description: 'HTTP routes that produce events to Kafka.' },
    paths,
    components: { schemas },
  };
}
