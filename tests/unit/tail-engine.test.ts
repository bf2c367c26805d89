import { describe, expect, it } from 'vitest';
import { decimalString, displayPlan } from '../../reads/display.ts';
import { FilterError } from '../../core/errors.ts';
import { compileFilter, type FilterContext } from '../../reads/filter.ts';
import { createFormatter, LineEncoder } from '../../reads/format.ts';
import { parseSince } from '../../reads/positions.ts';
import { headerMap, type TailRecord } from '../../reads/decode.ts';

const ctx = (value: unknown, extra: Partial<FilterContext> = {}): FilterContext => ({
  value,
  key: 'order-1',
  headers: { 'correlation-id': 'c-1' },
  topic: 'orders.placed',
  partition: 2,
  offset: 41,
  timestamp: 1_767_225_600_000,
  ...extra,
});

describe('--where filters', () => {
  it.each([
    ['value.amount > 100 && value.currency == "EUR"', { amount: 150, currency: 'EUR' }, true],
    ['value.amount > 100 && value.currency == "EUR"', { amount: 150, currency: 'USD' }, false],
    ['value.amount > 100 || value.currency == "EUR"', { amount: 10, currency: 'EUR' }, true],
    ['!(value.amount <= 100)', { amount: 101 }, true],
    ['value.items[0].sku.startsWith("KB")', { items: [{ sku: 'KB-01' }] }, true],
    ['value.items.length == 2', { items: [1, 2] }, true],
    ['["EUR", "GBP"].includes(value.currency)', { currency: 'GBP' }, true],
    ['value.loyaltyPoints == 1152921504606846977', { loyaltyPoints: 2n ** 60n + 1n }, true],
    ['value.loyaltyPoints > 1152921504606846976', { loyaltyPoints: 2n ** 60n }, false],
    ['value.loyaltyPoints > 10', { loyaltyPoints: 2n ** 60n }, true],
    ['value.amount * 2 >= 20 && value.amount - 1 == 9', { amount: 10 }, true],
    ['value.missing.deeper > 1', { amount: 1 }, false],
    ['value.couponCode == null', { couponCode: null }, true],
    ['value.amount > "100"', { amount: 150 }, false],
  ])('%s (case %#)', (expression, value, expected) => {
    expect(compileFilter(expression)(ctx(value))).toBe(expected);
  });

  it('reads key, headers and record coordinates', () => {
    const filter = compileFilter('key == "order-1" && headers["correlation-id"] == "c-1" && partition == 2 && offset >= 40 && topic.endsWith("placed")');
    expect(filter(ctx({}))).toBe(true);
    expect(filter(ctx({}, { partition: 1 }))).toBe(false);
  });

  it('cannot reach prototypes, globals or arbitrary functions', () => {
    expect(compileFilter('value.constructor == null || value.__proto__ == null')(ctx({}))).toBe(true);
    expect(compileFilter('value.toString == null')(ctx({}))).toBe(true);
    expect(() => compileFilter('process.exit(1)')).toThrow(FilterError);
    expect(() => compileFilter('value.amount.constructor("x")')).toThrow(/not supported/);
    expect(() => compileFilter('globalThis')).toThrow(/unknown name "globalThis"/);
    expect(() => compileFilter('value.amount >')).toThrow(/--where/);
    expect(() => compileFilter('a = 1')).toThrow(FilterError);
  });
});

describe('--since', () => {
  const now = Date.parse('2026-11-25T12:00:00Z');
  it.each([
    ['10m', now - 600_000],
    ['2h', now - 7_200_000],
    ['1d', now - 86_400_000],
    ['30s', now - 30_000],
    ['2026-11-25T10:00:00Z', Date.parse('2026-11-25T10:00:00Z')],
    ['2026-11-25T10:00:00.500+01:00', Date.parse('2026-11-25T09:00:00.500Z')],
  ])('%s', (text, expected) => expect(parseSince(text, now)).toBe(expected));

  it('refuses anything else, saying what it takes', () => {
    expect(() => parseSince('yesterday', now)).toThrow(/ISO-8601 time .* or a duration/);
    expect(() => parseSince('10 minutes', now)).toThrow(/--since/);
  });
});

describe('display of Avro values', () => {
  it('decimals become exact decimal strings, positive and negative', () => {
    expect(decimalString(Buffer.from([0x30, 0x39]), 2)).toBe('123.45');
    expect(decimalString(Buffer.from([0xcf, 0xc7]), 2)).toBe('-123.45');
    expect(decimalString(Buffer.from([0x05]), 3)).toBe('0.005');
    expect(decimalString(Buffer.from([0x07]), 0)).toBe('7');
  });

  it('converts decimal fields inside records, arrays and optional unions, and says when values hold bytes', () => {
    const plan = displayPlan({
      type: 'record',
      name: 'Price',
      fields: [
        { name: 'net', type: { type: 'bytes', logicalType: 'decimal', precision: 9, scale: 2 } },
        { name: 'taxes', type: { type: 'array', items: { type: 'bytes', logicalType: 'decimal', precision: 9, scale: 2 } } },
        { name: 'discount', type: ['null', { type: 'bytes', logicalType: 'decimal', precision: 9, scale: 2 }] },
        { name: 'raw', type: 'bytes' },
      ],
    } as never);
    expect(plan.binary).toBe(true);
    const raw = Buffer.from('hi');
    expect(plan.convert?.({ net: Buffer.from([0x30, 0x39]), taxes: [Buffer.from([0x01])], discount: null, raw })).toEqual({
      net: '123.45',
      taxes: ['0.01'],
      discount: null,
      raw,
    });
  });

  it('needs no conversion for schemas without bytes (the fast path)', () => {
    expect(displayPlan({ type: 'record', name: 'R', fields: [{ name: 'a', type: 'long' }] } as never)).toEqual({ binary: false });
  });
});

describe('formats', () => {
  const record: TailRecord = {
    topic: 'orders.placed',
    partition: 1,
    offset: '7',
    timestamp: Date.parse('2026-11-25T10:00:00Z'),
    key: 'order-1',
    value: { amount: 9.5, points: 2n ** 60n + 1n, blob: Buffer.from([1, 2, 3]) },
    headers: [
      ['h', 'v'],
      ['h', 'w'],
      ['n', null],
    ],
    binary: true,
  };

  it('ndjson: one object a line in a fixed order, longs exact, bytes as base64', () => {
    const line = createFormatter('ndjson', { headers: false }).format(record);
    expect(line).toBe(
      '{"topic":"orders.placed","partition":1,"offset":"7","timestamp":"2026-11-25T10:00:00.000Z","key":"order-1","value":{"amount":9.5,"points":1152921504606846977,"blob":"AQID"}}\n',
    );
    expect(createFormatter('ndjson', { headers: true }).format(record)).toContain('"headers":[["h","v"],["h","w"],["n",null]]}\n');
    expect(createFormatter('pretty', { headers: true }).format(record)).toContain('headers: h="v" h="w" n=(null)');
  });

  it('names the data-contract rule of a dead letter in every format, without --headers', () => {
    const letter = {
      ...record,
      binary: false,
      value: { amount: -1 },
      headers: [
        ['correlation-id', 'c-1'],
        ['__rule.name', 'positive'],
        ['__rule.mode', 'READ'],
        ['__rule.subject', 'orders.placed-value'],
        ['__rule.version', '2'],
        ['__rule.field', 'amount'],
        ['__rule.exception', "Expr failed: 'message.amount > 0'"],
      ] as const,
    };
    const rule = { rule: 'positive', mode: 'READ', subject: 'orders.placed-value', version: 2, field: 'amount', reason: "Expr failed: 'message.amount > 0'" };
    expect(JSON.parse(createFormatter('ndjson', { headers: false }).format(letter))).toMatchObject({ value: { amount: -1 }, rule });
    expect(createFormatter('pretty', { headers: false }).format(letter)).toContain("\n  rule 'positive' (READ) of orders.placed-value version 2 on field amount: Expr failed: 'message.amount > 0'\n");
    expect(createFormatter('table', { headers: false, columns: 200 }).format(letter)).toContain('[rule positive READ] {"amount":-1}');
    // A record no rule sent has no rule field.
    expect(JSON.parse(createFormatter('ndjson', { headers: false }).format(record)).rule).toBeUndefined();
  });

  it('encodes a batch of lines as one Buffer, multi-byte characters and lone surrogates as a string write would', () => {
    const lines = ['{"a":"é€😀"}\n', '', 'plain\n', 'lone \ud800\n'];
    const encoder = new LineEncoder();
    expect(encoder.encode(lines).bytes).toEqual(Buffer.from(lines.join(''), 'utf8'));
    expect(encoder.encode([]).bytes).toHaveLength(0);
  });

  it('reuses a batch buffer only after its write released it', () => {
    const encoder = new LineEncoder();
    const first = encoder.encode(['one\n']);
    const second = encoder.encode(['two\n']);
    // Not released: the second batch must not overwrite the first while it may still be being written.
    expect(first.bytes.toString()).toBe('one\n');
    expect(second.bytes.buffer === first.bytes.buffer && second.bytes.byteOffset === first.bytes.byteOffset).toBe(false);
    first.release();
    const third = encoder.encode(['three\n']);
    expect(third.bytes.toString()).toBe('three\n');
    expect(third.bytes.buffer).toBe(first.bytes.buffer);
    expect(second.bytes.toString()).toBe('two\n');
  });

  it('a --where filter sees a repeated header by its last value, as a worker handler does', () => {
    expect(headerMap(record.headers)).toEqual({ h: 'w', n: null });
  });

  it('an undecodable record shows its reason and hex in every format', () => {
    const bad: TailRecord = { ...record, value: null, binary: false, error: { code: 'SLUICE_DECODE_FAILED', message: 'value: bad magic' }, valueHex: 'ff00' };
    expect(JSON.parse(createFormatter('ndjson', { headers: false }).format(bad))).toMatchObject({ error: { message: 'value: bad magic' }, valueHex: 'ff00' });
    expect(createFormatter('pretty', { headers: false }).format(bad)).toContain('UNDECODABLE (SLUICE_DECODE_FAILED): value: bad magic\n  hex: ff00');
    expect(createFormatter('table', { headers: false, columns: 200 }).format(bad)).toContain('hex:ff00');
  });

  it('table: a header and one row a record, cut to the terminal', () => {
    const table = createFormatter('table', { headers: false, columns: 100 });
    expect(table.header()).toMatch(/^PART +OFFSET +TIMESTAMP +KEY +VALUE\n$/);
    const row = table.format(record);
    expect(row.length).toBeLessThanOrEqual(101);
    expect(row).toMatch(/^1 +7 +2026-11-25T10:00:00.000Z +order-1 +\{"amount":9.5/);
  });
});
