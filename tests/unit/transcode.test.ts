import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Type } from 'avsc';
import { createTypes, encodeAvro } from '../../core/formats/avro-types.ts';
import { avroCodecFromTypes } from '../../core/formats/avro.ts';
import type { RegistryClient } from '../../core/registry-client.ts';
import { frame } from '../../core/wire-format.ts';
import type { FetchedBatch, KafkaRecord, RecordHeaders } from '../../kafka/index.ts';
import { fetchedRecords } from '../../kafka/record-codec.ts';
import { RecordDecoder } from '../../reads/decode.ts';
import { createFormatter } from '../../reads/format.ts';
import { NdjsonEncoder } from '../../reads/ndjson.ts';
import { putInteger, putUtf8Json, putUtf8String, writeTo, type Cursor } from '../../reads/transcode.ts';

/**
 * The NDJSON written from the fetched bytes (NdjsonEncoder + transcode.ts) must be, byte for byte, what the
 * decoding path prints (RecordDecoder.decode + the ndjson formatter): over random schemas and values, random
 * keys and headers, and random bytes that are no valid value at all.
 */

const SCHEMA_ID = 7;
const RUNS = Number(process.env.SLUICE_FUZZ_RUNS ?? 150);

function registryOf(schema: unknown): RegistryClient {
  const types = createTypes(schema as never);
  const codec = avroCodecFromTypes(types);
  return { decoder: async () => codec, codecById: async () => codec } as unknown as RegistryClient;
}

async function bothWays(schema: unknown, records: KafkaRecord[], headers: boolean): Promise<{ expected: string; actual: string; decoder: RecordDecoder }> {
  const decoder = new RecordDecoder(registryOf(schema));
  await decoder.prepare(records);
  const formatter = createFormatter('ndjson', { headers });
  const expected = records.map((r) => formatter.format(decoder.decode(r))).join('');
  const batch = fetchedBatchOf(records);
  const actual = (await new NdjsonEncoder(decoder, { headers }).encodeFetched(batch)).bytes.toString('utf8');
  return { expected, actual, decoder };
}

/**
 * KafkaRecords of one topic and partition as uncompressed v2 record batches (one per record, so any offsets and
 * timestamps fit), read back in place by the seam's codec: what an output written from fetched bytes
 * (NdjsonEncoder) sees of them, in the same order. The CRC is left 0 (the codec does not check it: the broker did).
 */
function fetchedBatchOf(records: readonly KafkaRecord[]): FetchedBatch {
  const from = records.reduce((min, r) => (r.offset < min ? r.offset : min), records[0]?.offset ?? 0n);
  const scanned = fetchedRecords({ highWatermark: 0n, lastStableOffset: 0n, records: Buffer.concat(records.map(batchOf)) }, from, false);
  return {
    topic: records[0]?.topic ?? '',
    partition: records[0]?.partition ?? 0,
    nextOffset: scanned.nextOffset,
    highWatermark: 0n,
    lastStableOffset: 0n,
    leaderEpoch: scanned.leaderEpoch,
    visit: (visitor, limit) => scanned.visit(visitor, limit),
  };
}

function batchOf(r: KafkaRecord): Buffer {
  const parts: Buffer[] = [Buffer.from([0]), varint(0), varint(0), bytes(r.key), bytes(r.value), varint(r.headers.length)];
  for (const [name, value] of r.headers) parts.push(bytes(Buffer.from(name, 'utf8')), bytes(value));
  const body = Buffer.concat(parts);
  const record = Buffer.concat([varint(body.length), body]);
  const head = Buffer.alloc(61);
  head.writeBigInt64BE(r.offset, 0);
  head.writeInt32BE(49 + record.length, 8);
  head.writeInt8(2, 16);
  head.writeBigInt64BE(r.timestamp, 27);
  head.writeBigInt64BE(r.timestamp, 35);
  head.writeBigInt64BE(-1n, 43);
  head.writeInt32BE(1, 57);
  return Buffer.concat([head, record]);
}

/** Kafka's zigzag varint. */
function varint(n: number): Buffer {
  let z = n >= 0 ? n * 2 : -n * 2 - 1;
  const out: number[] = [];
  while (z >= 0x80) {
    out.push((z % 0x80) | 0x80);
    z = Math.floor(z / 0x80);
  }
  out.push(z);
  return Buffer.from(out);
}

const bytes = (b: Buffer | null): Buffer => (b === null ? varint(-1) : Buffer.concat([varint(b.length), b]));

function record(value: Buffer | null, key: Buffer | null = Buffer.from('k-1'), headers: RecordHeaders = [], offset = 41n): KafkaRecord {
  return { topic: 'orders.placed', partition: 3, offset, key, value, headers, timestamp: 1_767_225_600_123n };
}

// ---- random schemas -------------------------------------------------------------------------------------------

type Node =
  | { kind: 'primitive'; name: string }
  | { kind: 'timestamp' }
  | { kind: 'decimal'; scale: number; size?: number }
  | { kind: 'fixed'; size: number }
  | { kind: 'enum'; symbols: string[] }
  | { kind: 'array'; items: Node }
  | { kind: 'map'; values: Node }
  | { kind: 'record'; fields: Node[] }
  | { kind: 'union'; branches: Node[] }
  | { kind: 'again'; inner: Node };

const PRIMITIVES = ['null', 'boolean', 'int', 'long', 'float', 'double', 'string', 'bytes'];

const nodeArb: fc.Arbitrary<Node> = fc.letrec<{ node: Node }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(...PRIMITIVES).map((name) => ({ kind: 'primitive' as const, name })),
    fc.constant({ kind: 'timestamp' as const }),
    fc
      .record({ scale: fc.integer({ min: 0, max: 6 }), size: fc.option(fc.integer({ min: 1, max: 12 }), { nil: undefined }) })
      .map(({ scale, size }) => ({ kind: 'decimal' as const, scale, ...(size === undefined ? {} : { size }) })),
    fc.integer({ min: 0, max: 9 }).map((size) => ({ kind: 'fixed' as const, size })),
    fc.uniqueArray(fc.constantFrom('A', 'B', 'C_1', 'd', '_e'), { minLength: 1, maxLength: 4 }).map((symbols) => ({ kind: 'enum' as const, symbols })),
    tie('node').map((items) => ({ kind: 'array' as const, items })),
    tie('node').map((values) => ({ kind: 'map' as const, values })),
    fc.array(tie('node'), { maxLength: 4 }).map((fields) => ({ kind: 'record' as const, fields })),
    fc.tuple(fc.uniqueArray(fc.constantFrom(...PRIMITIVES), { minLength: 1, maxLength: 4 }), fc.option(tie('node'), { nil: undefined })).map(([names, extra]) => {
      // Unions hold no union directly, and at most one type of each branch name (a decimal's is bytes, a timestamp's long).
      const more = extra && extra.kind !== 'union' && extra.kind !== 'primitive' && extra.kind !== 'again' && extra.kind !== 'timestamp' ? [extra] : [];
      const taken: string[] = more.map((m) => (m.kind === 'decimal' && m.size === undefined ? 'bytes' : ''));
      return { kind: 'union' as const, branches: [...names.filter((n) => !taken.includes(n)).map((name) => ({ kind: 'primitive' as const, name })), ...more] };
    }),
    tie('node').map((inner) => ({ kind: 'again' as const, inner })),
  ),
})).node;

/** The Avro schema of a node; named types get unique names, some in a namespace of their own. */
function toSchema(root: Node): unknown {
  let n = 0;
  const name = () => `T${n++}`;
  const build = (node: Node): unknown => {
    switch (node.kind) {
      case 'primitive':
        return node.name;
      case 'timestamp':
        return { type: 'long', logicalType: 'timestamp-millis' };
      case 'decimal':
        return node.size === undefined
          ? { type: 'bytes', logicalType: 'decimal', precision: 30, scale: node.scale }
          : { type: 'fixed', name: name(), size: node.size, logicalType: 'decimal', precision: 30, scale: node.scale };
      case 'fixed':
        return { type: 'fixed', name: name(), size: node.size };
      case 'enum':
        return { type: 'enum', name: name(), symbols: node.symbols };
      case 'array':
        return { type: 'array', items: build(node.items) };
      case 'map':
        return { type: 'map', values: build(node.values) };
      case 'record': {
        const own = name();
        return { type: 'record', name: own, ...(n % 3 === 0 ? { namespace: `ns${n}` } : {}), fields: node.fields.map((f, i) => ({ name: `f${i}`, type: build(f) })) };
      }
      case 'union':
        return node.branches.map(build);
      case 'again': {
        // A named type used twice: defined in the first field, referred to by its full name in the second.
        const inner = build(node.inner) as { name?: string; namespace?: string };
        const ref = typeof inner === 'object' && inner !== null && !Array.isArray(inner) && inner.name !== undefined ? (inner.namespace ? `${inner.namespace}.${inner.name}` : inner.name) : 'null';
        return {
          type: 'record',
          name: name(),
          fields: [
            { name: 'first', type: inner },
            { name: 'second', type: ref },
          ],
        };
      }
    }
  };
  return { type: 'record', name: 'Root', namespace: 'test.random', fields: [{ name: 'v', type: build(root) }] };
}

/** Values of an avsc type (as the decoder has it: unions wrapped or not). */
function valueArb(type: Type, inUnion = false): fc.Arbitrary<unknown> {
  const t = type as Type & {
    typeName: string;
    fields?: { name: string; type: Type }[];
    types?: Type[];
    itemsType?: Type;
    valuesType?: Type;
    symbols?: string[];
    size?: number;
    underlyingType?: Type;
    branchName?: string;
  };
  switch (t.typeName) {
    case 'null':
      return fc.constant(null);
    case 'boolean':
      return fc.boolean();
    case 'int':
      return fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
    case 'long':
      // In a union (at any depth) a long beyond 2^52 may not be writable: encodeAvro then takes the wide type,
      // which unwraps the unions of a long and another number that the fast type wraps.
      if (inUnion) return fc.integer();
      return fc.oneof(
        fc.integer({ min: -1000, max: 1000 }),
        fc.maxSafeInteger(),
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((v) => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v)),
      );
    case 'float':
      return fc.float();
    case 'double':
      return fc.oneof(
        fc.double(),
        fc.integer().map((v) => v / 100),
      );
    case 'string':
      return fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom('"', '\\', '\n\u0001\u001f', 'é€😀', '\u2028'));
    case 'bytes':
      return fc.uint8Array({ maxLength: 12 }).map((b) => Buffer.from(b));
    case 'fixed':
      return fc.uint8Array({ minLength: t.size!, maxLength: t.size! }).map((b) => Buffer.from(b));
    case 'enum':
      return fc.constantFrom(...t.symbols!);
    case 'logical:timestamp-millis':
      return fc.integer({ min: -1e12, max: 4e12 });
    case 'array':
      return fc.array(valueArb(t.itemsType!, inUnion), { maxLength: 3 });
    case 'map':
      return fc.dictionary(fc.oneof(fc.string({ maxLength: 4 }), fc.constantFrom('0', '12', 'é')), valueArb(t.valuesType!, inUnion), { maxKeys: 3 });
    case 'record':
      return fc.record(Object.fromEntries(t.fields!.map((f) => [f.name, valueArb(f.type, inUnion)])));
    case 'union:unwrapped':
      return fc.oneof(...t.types!.map((b) => valueArb(b, true)));
    case 'union:wrapped':
      return fc.oneof(...t.types!.map((b) => (b.typeName === 'null' ? fc.constant(null) : valueArb(b, true).map((v) => ({ [(b as { branchName?: string }).branchName!]: v })))));
    default:
      throw new Error(`no values for ${t.typeName}`);
  }
}

const schemaAndValues = nodeArb.chain((node) => {
  const schema = toSchema(node);
  const types = createTypes(schema as never);
  // encodeAvro takes the wide type for a value holding a number beyond 2^52, whose unions of a long and another
  // number are unwrapped where the fast type's are wrapped: such values are written by the fast type.
  // A value holding both a long beyond 2^53 (which only the wide type writes) and a wrapped union of a long and
  // another number (which only the fast type reads so) is written by neither: no writer makes one, so none is drawn.
  const encode = (v: unknown): Buffer | undefined => {
    try {
      return encodeAvro(types, v);
    } catch {
      try {
        return types.fast.toBuffer(v);
      } catch {
        return undefined;
      }
    }
  };
  return fc.tuple(
    fc.constant(schema),
    fc.array(
      valueArb(types.fast)
        .map(encode)
        .filter((body): body is Buffer => body !== undefined)
        .map((body) => frame(SCHEMA_ID, body)),
      { minLength: 1, maxLength: 4 },
    ),
  );
});

const keyArb = fc.oneof(
  fc.constant(null),
  fc.string().map((s) => Buffer.from(s)),
  fc.uint8Array({ maxLength: 6 }).map((b) => Buffer.from(b)),
);
const headersArb: fc.Arbitrary<RecordHeaders> = fc.array(
  fc.tuple(
    fc.oneof(fc.constantFrom('correlation-id', 'a'), fc.string()),
    fc.option(
      fc.uint8Array({ maxLength: 6 }).map((b) => Buffer.from(b)),
      { nil: null },
    ),
  ),
  { maxLength: 3 },
);

describe('NDJSON written from the fetched bytes', () => {
  it('is the decoding path’s text for random schemas, values, keys and headers', async () => {
    let transcoded = 0;
    await fc.assert(
      fc.asyncProperty(schemaAndValues, fc.array(fc.tuple(keyArb, headersArb), { minLength: 4, maxLength: 4 }), fc.boolean(), async ([schema, values], extras, headers) => {
        const records = values.map((v, i) => record(v, extras[i]![0], extras[i]![1], BigInt(i) * 1_000_000_007n));
        const { expected, actual, decoder } = await bothWays(schema, records, headers);
        if (decoder.transcoder(SCHEMA_ID)) transcoded++;
        expect(actual).toBe(expected);
      }),
      { numRuns: RUNS },
    );
    // Most random schemas are covered, so the equality above is about the transcoder, not the fallback.
    expect(transcoded).toBeGreaterThan(RUNS / 2);
  }, 300_000);

  it('is the decoding path’s text (its error line) for bytes that are no valid value', async () => {
    await fc.assert(
      fc.asyncProperty(schemaAndValues, fc.array(fc.uint8Array({ maxLength: 24 }), { minLength: 1, maxLength: 4 }), async ([schema, values], garbage) => {
        // Valid values cut short or followed by noise, and plain noise (of one-byte varints: a count of
        // hundreds of millions of zero-byte items would make the decoding path build an array that large).
        const payloads = [
          ...values.map((v, i) => (i % 2 === 0 ? v.subarray(0, Math.max(5, v.length - 1)) : Buffer.concat([v, Buffer.from(garbage[0]!)]))),
          ...garbage.map((g) => frame(SCHEMA_ID, Buffer.from(g.map((b) => b & 0x7f)))),
        ];
        const { expected, actual } = await bothWays(
          schema,
          payloads.map((p) => record(p)),
          false,
        );
        expect(actual).toBe(expected);
      }),
      { numRuns: RUNS },
    );
  }, 300_000);

  it('writes the orders schema itself, and falls back for what it does not cover', async () => {
    const orders = {
      type: 'record',
      name: 'O',
      fields: [
        { name: 'amount', type: { type: 'bytes', logicalType: 'decimal', precision: 9, scale: 2 } },
        { name: 'big', type: 'long' },
        { name: 'm', type: { type: 'map', values: 'int' } },
      ],
    };
    const types = createTypes(orders as never);
    const value = frame(SCHEMA_ID, encodeAvro(types, { amount: Buffer.from([0xff, 0x38]), big: 2n ** 62n + 1n, m: { b: 1, a: 2 } }));
    const { expected, actual, decoder } = await bothWays(orders, [record(value), record(null), record(Buffer.from([0, 0, 0, 0, 99, 1])), record(value, frame(SCHEMA_ID, Buffer.alloc(0)))], true);
    expect(decoder.transcoder(SCHEMA_ID)).toBeDefined();
    expect(actual).toBe(expected);
    expect(actual.split('\n')[0]).toBe(
      '{"topic":"orders.placed","partition":3,"offset":"41","timestamp":"2026-01-01T00:00:00.123Z","key":"k-1","value":{"amount":"-2.00","big":4611686018427387905,"m":{"b":1,"a":2}},"headers":[]}',
    );
    // A map whose keys JavaScript would reorder is written by the decoding path, with the same text.
    const reordered = frame(SCHEMA_ID, encodeAvro(types, { amount: Buffer.from([1]), big: 1, m: { b: 1, 7: 2 } }));
    const again = await bothWays(orders, [record(reordered)], false);
    expect(again.actual).toBe(again.expected);
  });
  it('writes each record’s timestamp as the decoding path, within a second, across seconds, before 1970 and after 9999', async () => {
    const value = frame(SCHEMA_ID, encodeAvro(createTypes({ type: 'long' } as never), 7));
    const times = [
      1_767_225_600_123n,
      1_767_225_600_124n,
      1_767_225_600_999n,
      1_767_225_601_000n,
      1_767_225_601_005n,
      1_767_225_600_007n,
      0n,
      -1n,
      -1_000n,
      -1_001n,
      253_402_300_800_000n,
      253_402_300_800_450n,
    ];
    const records = times.map((timestamp, i) => ({ ...record(value, null, [], BigInt(i)), timestamp }));
    const { expected, actual } = await bothWays({ type: 'long' }, records, false);
    expect(actual).toBe(expected);
    expect(actual).toContain('"timestamp":"1969-12-31T23:59:58.999Z"');
    expect(actual).toContain('"timestamp":"+010000-01-01T00:00:00.450Z"');
  });

  it('writes numbers as the decoding path prints them: hundredths, doubles near the fast path’s bounds, longs of every length', async () => {
    const schema = {
      type: 'record',
      name: 'N',
      fields: [
        { name: 'd', type: 'double' },
        { name: 'f', type: 'float' },
        { name: 'l', type: 'long' },
      ],
    };
    const types = createTypes(schema as never);
    const bound = 4.5e13;
    const doubles = fc.oneof(
      fc.integer({ min: -(2 ** 31), max: 2 ** 31 }).map((cents) => cents / 100),
      fc.integer({ min: -1e6, max: 1e6 }).map((n) => n / 1000),
      fc.constantFrom(0.1 + 0.2, 1.005, -0.05, 0.01, 99.99, 140.3, 2 ** 52 / 100, bound - 0.01, bound + 0.01, -bound + 0.01, 1e21, 1e-7, Number.MAX_VALUE, Number.MIN_VALUE, -0),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.double({ min: -(2 ** 53), max: 2 ** 53, noNaN: true }).map((d) => Math.round(d * 100) / 100),
    );
    const longs = fc.oneof(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.bigInt({ min: -(2n ** 54n), max: 2n ** 54n }), fc.integer().map(BigInt));
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(doubles, doubles, longs), { minLength: 1, maxLength: 8 }), async (rows) => {
        const records = rows.map(([d, f, l], i) =>
          record(frame(SCHEMA_ID, encodeAvro(types, { d, f: Math.fround(f), l: l >= -(2n ** 53n) && l <= 2n ** 53n ? Number(l) : l })), undefined, [], BigInt(i)),
        );
        const { expected, actual, decoder } = await bothWays(schema, records, false);
        expect(decoder.transcoder(SCHEMA_ID)).toBeDefined();
        expect(actual).toBe(expected);
      }),
      { numRuns: RUNS * 4 },
    );
  }, 300_000);
  it('names the rule of a dead letter as the decoding path does (its line takes that path)', async () => {
    const schema = { type: 'record', name: 'R', fields: [{ name: 'amount', type: 'double' }] };
    const value = frame(SCHEMA_ID, encodeAvro(createTypes(schema as never), { amount: -1 }));
    const letter: RecordHeaders = [
      ['trace', Buffer.from('t-1')],
      ['__rule.name', Buffer.from('positive')],
      ['__rule.mode', Buffer.from('READ')],
    ];
    for (const headers of [false, true]) {
      const { expected, actual, decoder } = await bothWays(schema, [record(value, Buffer.from('k'), letter), record(value, Buffer.from('k'), [['__rules', null]])], headers);
      expect(decoder.transcoder(SCHEMA_ID)).toBeDefined();
      expect(actual).toBe(expected);
      expect(actual.split('\n')[0]).toContain(',"rule":{"rule":"positive","mode":"READ"}');
    }
  });
  it('writes headers a record shares with the one before as it writes any: same bytes, other bytes of the same length, rule names, none', async () => {
    const schema = { type: 'record', name: 'H', fields: [{ name: 'n', type: 'int' }] };
    const value = frame(SCHEMA_ID, encodeAvro(createTypes(schema as never), { n: 1 }));
    const a: RecordHeaders = [
      ['correlation-id', Buffer.from('d1225d39')],
      ['content-type', Buffer.from('application/avro')],
    ];
    // Each differs from `a` in one byte only, keeping its length (and so its record's layout).
    const otherValue: RecordHeaders = [a[0]!, ['content-type', Buffer.from('application/avrp')]];
    const otherName: RecordHeaders = [a[0]!, ['content-typf', a[1]![1]]];
    const nullValue: RecordHeaders = [a[0]!, ['content-type', null]];
    const rule: RecordHeaders = [['__rule.name-i', Buffer.from('d1225d39')], a[1]!];
    const escaped: RecordHeaders = [['correlation-id', Buffer.from('d1225"39')], a[1]!];
    const runs = [a, a, a, otherValue, otherValue, otherName, a, nullValue, nullValue, [], [], a, rule, rule, a, escaped, escaped, a];
    for (const headers of [true, false]) {
      const records = runs.map((h, i) => record(value, Buffer.from('k'), h, BigInt(i)));
      const { expected, actual, decoder } = await bothWays(schema, records, headers);
      expect(decoder.transcoder(SCHEMA_ID)).toBeDefined();
      expect(actual).toBe(expected);
    }
  });

  it('writes headers kept from an earlier encode as the decoding path, after the output buffer and the fetched bytes were reused', async () => {
    const schema = { type: 'record', name: 'H', fields: [{ name: 's', type: 'string' }] };
    const types = createTypes(schema as never);
    const headersOf = (id: string): RecordHeaders => [
      ['correlation-id', Buffer.from(id)],
      ['content-type', Buffer.from('application/avro')],
    ];
    const short = frame(SCHEMA_ID, encodeAvro(types, { s: 'x' }));
    const long = frame(SCHEMA_ID, encodeAvro(types, { s: 'y'.repeat(400) }));
    const decoder = new RecordDecoder(registryOf(schema));
    const first = [record(short, Buffer.from('k'), headersOf('aaaaaaaa'), 1n)];
    const second = [record(long, Buffer.from('k'), headersOf('aaaaaaaa'), 2n), record(short, Buffer.from('k'), headersOf('bbbbbbbb'), 3n)];
    await decoder.prepare([...first, ...second]);
    const formatter = createFormatter('ndjson', { headers: true });
    const encoder = new NdjsonEncoder(decoder, { headers: true });
    const bytes = Buffer.concat(first.map(batchOf));
    const scanned = fetchedRecords({ highWatermark: 0n, lastStableOffset: 0n, records: bytes }, 1n, false);
    const once = encoder.encode({ topic: 'orders.placed', partition: 3, nextOffset: 2n, highWatermark: 0n, lastStableOffset: 0n, leaderEpoch: -1, visit: (v, l) => scanned.visit(v, l) })!;
    expect(once.bytes.toString('utf8')).toBe(formatter.format(decoder.decode(first[0]!)));
    // The buffer goes back to be refilled (from its start, by a longer line), and the fetched bytes change: the
    // headers the next record shares are those of the first record, and the ones of the record after are not.
    once.release();
    bytes.write('bbbbbbbb', bytes.indexOf('aaaaaaaa'));
    const again = encoder.encode(fetchedBatchOf(second))!;
    expect(again.bytes.toString('utf8')).toBe(second.map((r) => formatter.format(decoder.decode(r))).join(''));
  });

  it('writes records of many long field names and unions of more than 63 branches as the decoding path', async () => {
    const branches = Array.from({ length: 70 }, (_, i) => ({ type: 'enum', name: `E${i}`, symbols: [`S${i}`, 'OTHER'] }));
    const schema = {
      type: 'record',
      name: 'Wide',
      fields: [
        ...Array.from({ length: 120 }, (_, i) => ({ name: `a_rather_long_field_name_${i}`, type: 'int' })),
        { name: 'wideUnion', type: ['null', ...branches] },
        // More symbols than the enum writer writes as code of their own.
        { name: 'wideEnum', type: { type: 'enum', name: 'Wide70', symbols: Array.from({ length: 70 }, (_, i) => `W${i}`) } },
      ],
    };
    const types = createTypes(schema as never);
    const values = [0, 1, 69, 70].map((branch) => {
      const value: Record<string, unknown> = Object.fromEntries(Array.from({ length: 120 }, (_, i) => [`a_rather_long_field_name_${i}`, i * branch - 7]));
      value.wideUnion = branch === 0 ? null : { [`E${branch - 1}`]: `S${branch - 1}` };
      value.wideEnum = `W${branch % 70}`;
      return value;
    });
    const records = values.map((v, i) => record(frame(SCHEMA_ID, types.fast.toBuffer(v)), undefined, [], BigInt(i)));
    const { expected, actual, decoder } = await bothWays(schema, records, false);
    expect(decoder.transcoder(SCHEMA_ID)).toBeDefined();
    expect(actual).toBe(expected);
    expect(actual).toContain('"wideUnion":{"E68":"S68"}');
    expect(actual).toContain('"wideEnum":"W69"');
  });
  it('fetches the schemas a batch needs before writing it, a framed key’s too, and writes it as the decoding path then', async () => {
    const schema = { type: 'record', name: 'R', fields: [{ name: 'amount', type: 'double' }] };
    const types = createTypes(schema as never);
    const value = frame(SCHEMA_ID, encodeAvro(types, { amount: 12.5 }));
    const records = [record(value), record(value, frame(SCHEMA_ID + 1, encodeAvro(types, { amount: 1 }))), record(Buffer.from('not framed'))];
    const expected = new RecordDecoder(registryOf(schema));
    await expected.prepare(records);
    const formatter = createFormatter('ndjson', { headers: false });
    const lines = records.map((r) => formatter.format(expected.decode(r))).join('');
    const fresh = new RecordDecoder(registryOf(schema));
    expect(new NdjsonEncoder(fresh, { headers: false }).encode(fetchedBatchOf(records.slice(0, 1)))).toBeUndefined();
    // The value's schema alone is not enough for a record with a framed key.
    await fresh.prepare(records.slice(0, 1));
    expect(new NdjsonEncoder(fresh, { headers: false }).encode(fetchedBatchOf(records.slice(0, 1)))).toBeDefined();
    expect(new NdjsonEncoder(fresh, { headers: false }).encode(fetchedBatchOf(records.slice(1, 2)))).toBeUndefined();
    const decoder = new RecordDecoder(registryOf(schema));
    const encoded = await new NdjsonEncoder(decoder, { headers: false }).encodeFetched(fetchedBatchOf(records));
    expect(decoder.prepared(SCHEMA_ID) && decoder.prepared(SCHEMA_ID + 1)).toBe(true);
    expect(encoded.count).toBe(3);
    expect(encoded.bytes.toString('utf8')).toBe(lines);
  });
});

describe('the transcoder’s text writers', () => {
  const cursor = (): Cursor => {
    const c: Cursor = { src: Buffer.alloc(0), at: 0, end: 0, out: Buffer.alloc(0), view: new DataView(new ArrayBuffer(0)), o: 0 };
    // Small, so that writes grow it.
    writeTo(c, Buffer.alloc(3));
    return c;
  };
  // Plain ASCII mostly (the four-byte path), with what JSON escapes, multi-byte characters and broken sequences
  // anywhere among it.
  const byte = fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) }, fc.constantFrom(0x22, 0x5c, 0x00, 0x1f, 0x7f, 0x80, 0xbf, 0xc3, 0xe2, 0xf0, 0xff));
  const piece = fc.oneof(
    { weight: 4, arbitrary: fc.array(byte, { maxLength: 24 }).map((b) => Buffer.from(b)) },
    fc.string({ unit: 'grapheme' }).map((t) => Buffer.from(t)),
  );

  it('write bytes as JSON.stringify writes their text, or refuse bytes that are no UTF-8', () => {
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 6 }), fc.nat({ max: 5 }), fc.nat({ max: 5 }), (pieces, before, after) => {
        const text = Buffer.concat(pieces);
        // Somewhere inside a larger buffer, as values lie in a fetch.
        const src = Buffer.concat([Buffer.alloc(before, 0x22), text, Buffer.alloc(after, 0x5c)]);
        const c = cursor();
        const written = putUtf8Json(c, src, before, before + text.length);
        expect(written).toBe(isUtf8(text));
        if (written) expect(c.out.toString('utf8', 0, c.o)).toBe(JSON.stringify(text.toString('utf8')));
        else expect(c.o).toBe(0);
        const d = cursor();
        putUtf8String(d, src, before, before + text.length);
        expect(d.out.toString('utf8', 0, d.o)).toBe(JSON.stringify(text.toString('utf8')));
      }),
      { numRuns: RUNS * 20 },
    );
  });

  it('write a safe integer’s digits as `${n}` prints them', () => {
    const integers = fc.oneof(
      fc.maxSafeInteger(),
      fc.integer(),
      fc.integer({ min: -(2 ** 31) - 10, max: -(2 ** 31) + 10 }),
      fc.integer({ min: 2 ** 31 - 10, max: 2 ** 31 + 10 }),
      fc.integer({ min: 1, max: 90_071_992 }).chain((k) => fc.integer({ min: -2, max: 2 }).map((d) => Math.min(Number.MAX_SAFE_INTEGER, k * 100_000_000 + d))),
      fc.constantFrom(0, -0, 9, 10, 99_999, 100_000, 999_999_999, 1_000_000_000, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 1_767_225_600_123),
    );
    fc.assert(
      fc.property(integers, (n) => {
        const c = cursor();
        putInteger(c, n);
        expect(c.out.toString('latin1', 0, c.o)).toBe(`${n}`);
      }),
      { numRuns: RUNS * 20 },
    );
  });
});
