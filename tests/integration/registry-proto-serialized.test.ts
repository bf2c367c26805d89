import { execFile, spawn, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../core/registry-client.ts';
import { decodeFramed } from '../../core/serde.ts';
import { startRegistry, type RunningRegistry } from '../../registry/server.ts';
import { call, deleteRegistryTopic, registryTestConfig } from './registry-helpers.ts';

/**
 * `?format=serialized` checked by an independent implementation: Google's protobuf for Python
 * (Debian's python3-protobuf) loads the descriptors Sluice answers into a DescriptorPool, which
 * validates every type reference, and writes a message Sluice's own codec must read back; and a
 * descriptor registered the way Confluent's Python serializer sends it comes back as sent.
 */

const PYTHON = '/usr/bin/python3';
const SCRIPT = 'tests/support/proto_descriptor_interop.py';
const hasProtobuf = spawnSync(PYTHON, ['-c', 'import google.protobuf.descriptor_pool'], { stdio: 'ignore' }).status === 0;
const run = promisify(execFile);

const { config, logger, topic } = registryTestConfig();
let registry: RunningRegistry;
const suffix = Date.now().toString(36);

const COMMON = `syntax = "proto3";
package acme.common;
message Money { int64 cents = 1; string currency = 2; }
enum Level { LOW = 0; HIGH = 1; }
`;

const ORDER = `syntax = "proto3";
package acme.orders;
import "common.proto";
import "google/protobuf/timestamp.proto";

message Order {
  string order_id = 1;
  acme.common.Money total = 2;
  map<string, int32> tag_counts = 3;
  map<string, Line> lines_by_sku = 4;
  oneof payment { string card = 5; string iban = 6; }
  optional string note = 7;
  repeated Line lines = 8;
  Status status = 9;
  google.protobuf.Timestamp placed_at = 10;
  acme.common.Level level = 11;
  message Line { string sku = 1; int32 qty = 2; }
  enum Status { NEW = 0; PAID = 1; }
}
`;

const VALUE = {
  order_id: 'o-1',
  total: { cents: 1250, currency: 'EUR' },
  tag_counts: { red: 2, blue: 5 },
  lines_by_sku: { 'sku-1': { sku: 'sku-1', qty: 3 } },
  iban: 'DE89',
  note: 'gift',
  lines: [{ sku: 'sku-2', qty: 1 }],
  status: 'PAID',
  level: 'HIGH',
};

async function python(args: string[], stdin?: string): Promise<string> {
  if (stdin === undefined) return (await run(PYTHON, [SCRIPT, ...args], { timeout: 30_000 })).stdout.trim();
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [SCRIPT, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`python exited ${code}: ${err}`))));
    child.stdin.end(stdin);
  });
}

beforeAll(async () => {
  registry = await startRegistry({ config, logger, port: 0, topic });
});

afterAll(async () => {
  await registry?.close();
  await deleteRegistryTopic(config, logger, topic);
});

describe.skipIf(!hasProtobuf)('Protobuf ?format=serialized', () => {
  it('answers descriptors Google protobuf loads, whose messages Sluice reads', async () => {
    const common = `p21-common-${suffix}`;
    const orders = `p21-orders-${suffix}`;
    expect((await call(registry.url, 'POST', `/subjects/${common}/versions`, { schema: COMMON, schemaType: 'PROTOBUF' })).status).toBe(200);
    const registered = await call(registry.url, 'POST', `/subjects/${orders}/versions`, {
      schema: ORDER,
      schemaType: 'PROTOBUF',
      references: [{ name: 'common.proto', subject: common, version: 1 }],
    });
    expect(registered.status).toBe(200);
    const { id } = registered.body as { id: number };

    const byId = (await call(registry.url, 'GET', `/schemas/ids/${id}?format=serialized`)).body as { schema: string; references: unknown[] };
    const serialized = byId.schema;
    expect(serialized).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(byId.references).toEqual([{ name: 'common.proto', subject: common, version: 1 }]);
    // The same bytes from every read Confluent serves the format on; without it, the text.
    expect((await call(registry.url, 'GET', `/schemas/ids/${id}/schema?format=serialized`)).text).toBe(serialized);
    expect(((await call(registry.url, 'GET', `/subjects/${orders}/versions/1?format=serialized`)).body as { schema: string }).schema).toBe(serialized);
    expect((await call(registry.url, 'GET', `/subjects/${orders}/versions/latest/schema?format=serialized`)).text).toBe(serialized);
    expect(((await call(registry.url, 'GET', `/schemas/ids/${id}`)).body as { schema: string }).schema).toBe(ORDER);
    // An unknown format is the text, as Confluent answers (it refuses none, for forward compatibility).
    expect(((await call(registry.url, 'GET', `/schemas/ids/${id}?format=bogus`)).body as { schema: string }).schema).toBe(ORDER);
    const commonSerialized = ((await call(registry.url, 'GET', `/subjects/${common}/versions/1?format=serialized`)).body as { schema: string }).schema;

    const files = [
      ['common.proto', commonSerialized],
      ['orders.proto', serialized],
    ];
    const bytes = await python(['encode'], JSON.stringify({ files, message: 'acme.orders.Order', value: { ...VALUE, placed_at: '2026-01-02T03:04:05Z' } }));
    const framed = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), Buffer.from([0]), Buffer.from(bytes, 'base64')]);
    framed.writeUInt32BE(id, 1);
    const decoded = (await decodeFramed(new RegistryClient(registry.url), framed)).value as Record<string, unknown>;
    const plain = JSON.parse(JSON.stringify(decoded, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v))) as Record<string, unknown>;
    expect(plain).toMatchObject({ ...VALUE, placed_at: { seconds: 1767323045 } });
  });

  it('gives back a descriptor registered as Confluent Python serializer sends it', async () => {
    const sent = await python(['descriptor']);
    const subject = `p21-python-${suffix}`;
    const registered = await call(registry.url, 'POST', `/subjects/${subject}/versions`, { schema: sent, schemaType: 'PROTOBUF' });
    expect(registered.status).toBe(200);
    const answered = ((await call(registry.url, 'GET', `/subjects/${subject}/versions/1?format=serialized`)).body as { schema: string }).schema;
    expect(await python(['compare', sent, answered])).toBe('equal');
    // Stored and answered without the parameter as .proto text, as Confluent does.
    expect(((await call(registry.url, 'GET', `/subjects/${subject}/versions/1`)).body as { schema: string }).schema).toMatch(/^syntax = "proto3";/);
  });

  it('leaves Avro and JSON Schema as text', async () => {
    const subject = `p21-json-${suffix}`;
    const schema = JSON.stringify({ type: 'object', properties: { a: { type: 'string' } } });
    expect((await call(registry.url, 'POST', `/subjects/${subject}/versions`, { schema, schemaType: 'JSON' })).status).toBe(200);
    expect(((await call(registry.url, 'GET', `/subjects/${subject}/versions/1?format=serialized`)).body as { schema: string }).schema).toBe(schema);
  });
});
