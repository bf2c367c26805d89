import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createCodec, type SchemaType } from '../../core/formats/index.ts';
import {
  CompiledContract,
  ContractCache,
  migrate,
  runWriteRules,
  validateMetadata,
  validateRuleSet,
  type Metadata,
  type Rule,
  type RuleResults,
  type RuleSet,
  type RuleVerdict,
} from '../../rules/index.ts';
import { globMatcher } from '../../rules/wildcard.ts';

const ORDER_JSON = {
  type: 'object',
  properties: {
    orderId: { type: 'string' },
    amount: { type: 'number' },
    currency: { type: 'string', enum: ['EUR', 'USD'] },
    customer: { type: 'object', properties: { email: { type: 'string' }, ssn: { type: 'string' }, age: { type: 'integer' } } },
    notes: { type: 'array', 'confluent:tags': ['FREE_TEXT'], items: { type: 'string' } },
  },
};

function contract(ruleSet: RuleSet, metadata?: Metadata, schemaType: SchemaType = 'JSON', schema: string = JSON.stringify(ORDER_JSON), version = 1): CompiledContract {
  return new CompiledContract({ subject: 'orders-value', version, id: 7, codec: createCodec({ schemaType, schema, references: [] }), metadata, ruleSet });
}

const rule = (r: Partial<Rule> & Pick<Rule, 'name' | 'expr'>): Rule => ({ kind: 'CONDITION', mode: 'WRITE', type: 'CEL', ...r });

/** Runs synchronously: these rules are CEL only. */
const sync = (v: RuleVerdict | Promise<RuleVerdict>): RuleVerdict => {
  if (v instanceof Promise) throw new Error('expected a synchronous verdict');
  return v;
};

const order = () => ({ orderId: 'o-1', amount: 12.5, currency: 'EUR', customer: { email: 'a@b.c', ssn: '123-45-6789', age: 40 }, notes: ['call me'] });

describe('validateRuleSet', () => {
  const problemsOf = (rules: unknown[], metadata?: unknown) => validateRuleSet({ domainRules: rules }, metadata);

  it('accepts a well-formed set', () => {
    expect(problemsOf([rule({ name: 'positive', expr: 'message.amount > 0' }), rule({ name: 'mask', type: 'CEL_FIELD', kind: 'TRANSFORM', tags: ['PII'], expr: "'***'" })])).toEqual([]);
  });

  it('names the rule and the field of each problem', () => {
    const problems = problemsOf([
      rule({ name: 'broken', expr: 'message.amount >' }),
      rule({ name: 'kind', kind: 'CHECK' as never, expr: 'true' }),
      rule({ name: 'mode', mode: 'SOMETIMES' as never, expr: 'true' }),
      rule({ name: 'type', type: 'ENCRYPT' as never, expr: 'true' }),
      rule({ name: 'action', onFailure: 'PANIC', expr: 'true' }),
      rule({ name: 'pair', onFailure: 'NONE,ERROR', expr: 'true' }),
      rule({ name: 'dlq', onFailure: 'DLQ', expr: 'true' }),
      rule({ name: 'migrate', mode: 'UPGRADE', expr: 'true' }),
      rule({ name: '9lives', expr: 'true' }),
    ]);
    const byRule = (name: string) => problems.filter((p) => p.rule === name).map((p) => `${p.path}: ${p.message}`);
    expect(byRule('broken')).toEqual([expect.stringMatching(/^ruleSet\.domainRules\[0\]\.expr: does not compile: .*found > but expecting end of input/)]);
    expect(byRule('kind')).toEqual([expect.stringMatching(/\[1\]\.kind: unknown kind "CHECK"/)]);
    expect(byRule('mode')).toEqual([expect.stringMatching(/\[2\]\.mode: unknown mode "SOMETIMES"/)]);
    expect(byRule('type')).toEqual([expect.stringMatching(/\[3\]\.type: unknown rule type "ENCRYPT"/)]);
    expect(byRule('action')).toEqual([expect.stringMatching(/\[4\]\.onFailure: unknown action "PANIC"/)]);
    expect(byRule('pair')).toEqual([expect.stringMatching(/an action pair is only valid with WRITEREAD and UPDOWN/)]);
    expect(byRule('dlq')).toEqual([expect.stringMatching(/needs params\["dlq\.topic"\]/)]);
    expect(byRule('migrate')).toEqual([expect.stringMatching(/domain rules can only be WRITE, READ, WRITEREAD/)]);
    expect(byRule('9lives')).toEqual([expect.stringMatching(/illegal character in rule name/)]);
  });

  it('refuses duplicate names across domain and migration rules', () => {
    const problems = validateRuleSet({ migrationRules: [rule({ name: 'same', mode: 'UPGRADE', type: 'JSONATA', kind: 'TRANSFORM', expr: '$' })], domainRules: [rule({ name: 'same', expr: 'true' })] });
    expect(problems).toEqual([{ rule: 'same', path: 'ruleSet.domainRules[0].name', message: "found rule with duplicate name 'same'" }]);
  });

  it('bounds expressions: too long, nested comprehensions, regexes RE2 cannot run', () => {
    const long = `message.amount > 0 && ${'true && '.repeat(600)}true`;
    const problems = problemsOf([
      rule({ name: 'long', expr: long }),
      rule({ name: 'nested', expr: 'message.notes.all(n, message.notes.exists(m, m == n))' }),
      rule({ name: 'lookahead', type: 'JSONATA', kind: 'TRANSFORM', expr: '$replace(orderId, /a(?=b)/, "x")' }),
    ]);
    expect(problems.map((p) => [p.rule, p.message])).toEqual([
      ['long', expect.stringMatching(/has \d+ characters; at most 4096/)],
      ['nested', expect.stringMatching(/may not contain another/)],
      ['lookahead', expect.stringMatching(/cannot run in linear time/)],
    ]);
  });

  it('accepts the DLQ topic from the metadata properties, and an action pair on WRITEREAD', () => {
    expect(problemsOf([rule({ name: 'r', mode: 'WRITEREAD', onFailure: 'DLQ,ERROR', expr: 'true' })], { properties: { 'dlq.topic': 'orders-dlq' } })).toEqual([]);
  });

  it('checks metadata shapes', () => {
    expect(validateMetadata({ tags: { '**.ssn': 'PII' }, properties: { owner: 3 }, sensitive: 'x' }).map((p) => p.path)).toEqual([
      'metadata.tags.**.ssn',
      'metadata.properties.owner',
      'metadata.sensitive',
    ]);
  });
});

describe('CEL conditions on the message', () => {
  it('passes, fails with ERROR naming rule, subject and version, and leaves the message untouched', () => {
    const c = contract({ domainRules: [rule({ name: 'positive', expr: 'message.amount > 0' }), rule({ name: 'currency', expr: "message.currency in ['EUR', 'USD']" })] });
    expect(sync(c.run('WRITE', order()))).toEqual({ ok: true, message: order() });
    const bad = { ...order(), amount: -1 };
    expect(sync(c.run('WRITE', bad))).toEqual({
      ok: false,
      message: bad,
      failure: { rule: 'positive', subject: 'orders-value', version: 1, mode: 'WRITE', action: 'ERROR', reason: "Expr failed: 'message.amount > 0'" },
    });
  });

  it('a runtime error (missing field, type mismatch) is that rule failing with its text', () => {
    const c = contract({ domainRules: [rule({ name: 'typo', expr: 'message.amount > 0 && message.nope == 1' }), rule({ name: 'mismatch', expr: 'message.orderId > 1', onFailure: 'NONE' })] });
    const verdict = sync(c.run('WRITE', order(), { trace: true }));
    expect(verdict.ok).toBe(false);
    expect(!verdict.ok && verdict.failure).toMatchObject({ rule: 'typo', reason: 'field not found: nope' });
    const second = contract({ domainRules: [rule({ name: 'mismatch', expr: 'message.orderId > 1', onFailure: 'NONE' })] });
    expect(sync(second.run('WRITE', order(), { trace: true })).outcomes).toEqual([
      { rule: 'mismatch', type: 'CEL', kind: 'CONDITION', result: 'failed', action: 'NONE', reason: expect.stringContaining("no matching overload for '_>_'") },
    ]);
  });

  it('uses the rule doc as the reason when it has one, and the guard before ; skips the rule', () => {
    const c = contract({ domainRules: [rule({ name: 'eur-cap', doc: 'EUR orders are capped at 100', expr: "message.currency == 'EUR'; message.amount <= 100.0" })] });
    expect(sync(c.run('WRITE', { ...order(), currency: 'USD', amount: 500 })).ok).toBe(true);
    expect(sync(c.run('WRITE', { ...order(), amount: 500 }))).toMatchObject({ ok: false, failure: { reason: 'EUR orders are capped at 100' } });
  });

  it('DLQ names its topic, from params or else metadata properties', () => {
    const fromParams = contract({ domainRules: [rule({ name: 'p', expr: 'false', onFailure: 'DLQ', params: { 'dlq.topic': 'bad-orders' } })] });
    expect(sync(fromParams.run('WRITE', order()))).toMatchObject({ ok: false, failure: { rule: 'p', action: 'DLQ', dlqTopic: 'bad-orders' } });
    const fromMeta = contract({ domainRules: [rule({ name: 'm', expr: 'false', onFailure: 'DLQ' })] }, { properties: { 'dlq.topic': 'meta-dlq' } });
    expect(sync(fromMeta.run('WRITE', order()))).toMatchObject({ ok: false, failure: { action: 'DLQ', dlqTopic: 'meta-dlq' } });
  });

  it('matches() runs on RE2: a catastrophic pattern answers, a lookahead is refused at registration', () => {
    const c = contract({ domainRules: [rule({ name: 're', expr: "message.orderId.matches('^(a+)+$')" })] });
    expect(sync(c.run('WRITE', { ...order(), orderId: `${'a'.repeat(5000)}!` })).ok).toBe(false);
    expect(sync(c.run('WRITE', { ...order(), orderId: 'aaaa' })).ok).toBe(true);
    expect(validateRuleSet({ domainRules: [rule({ name: 'la', expr: "message.orderId.matches('a(?=b)')" })] })).toEqual([]);
    const la = contract({ domainRules: [rule({ name: 'la', expr: "message.orderId.matches('a(?=b)')" })] });
    expect(sync(la.run('WRITE', order()))).toMatchObject({ ok: false, failure: { rule: 'la', reason: expect.stringMatching(/.+/) } });
  });
});

describe('modes, actions and disabled', () => {
  const seen = (c: CompiledContract, mode: 'WRITE' | 'READ') => (sync(c.run(mode, order(), { trace: true })).outcomes ?? []).map((o) => o.rule);

  it('runs WRITE on write, READ on read (reversed), WRITEREAD on both, skips disabled', () => {
    const c = contract({
      domainRules: [
        rule({ name: 'w', expr: 'true' }),
        rule({ name: 'r', mode: 'READ', expr: 'true' }),
        rule({ name: 'wr', mode: 'WRITEREAD', expr: 'true' }),
        rule({ name: 'off', mode: 'WRITEREAD', expr: 'false', disabled: true }),
        rule({ name: 'r2', mode: 'READ', expr: 'true' }),
      ],
    });
    expect(seen(c, 'WRITE')).toEqual(['w', 'wr']);
    expect(seen(c, 'READ')).toEqual(['r2', 'wr', 'r']);
    expect(c.has('UPGRADE')).toBe(false);
  });

  it('an action pair is read by mode: "NONE,ERROR" lets writes through and stops reads', () => {
    const c = contract({ domainRules: [rule({ name: 'pair', mode: 'WRITEREAD', expr: 'false', onFailure: 'NONE,ERROR' })] });
    expect(sync(c.run('WRITE', order())).ok).toBe(true);
    expect(sync(c.run('READ', order()))).toMatchObject({ ok: false, failure: { rule: 'pair', mode: 'READ', action: 'ERROR' } });
  });

  it('onSuccess actions run too', () => {
    const c = contract({ domainRules: [rule({ name: 'divert', expr: "message.currency == 'USD'", onSuccess: 'DLQ', onFailure: 'NONE', params: { 'dlq.topic': 'usd' } })] });
    expect(sync(c.run('WRITE', order())).ok).toBe(true);
    expect(sync(c.run('WRITE', { ...order(), currency: 'USD' }))).toMatchObject({ ok: false, failure: { action: 'DLQ', dlqTopic: 'usd' } });
  });

  it('enableAt other than ALL or CLIENT turns the set off', () => {
    const c = contract({ enableAt: 'SERVER', domainRules: [rule({ name: 'never', expr: 'false' })] });
    expect(c.has('WRITE')).toBe(false);
  });
});

describe('CEL_FIELD on tagged fields', () => {
  const mask = rule({ name: 'mask-pii', kind: 'TRANSFORM', type: 'CEL_FIELD', tags: ['PII'], expr: "typeName == 'STRING' ; value.substring(0, 2) + '***'" });

  it('masks the fields metadata tags select (JSON Schema), on a copy', () => {
    const c = contract({ domainRules: [mask] }, { tags: { '**.ssn': ['PII'], '$.customer.email': ['PII'] } });
    const input = order();
    const verdict = sync(c.run('WRITE', input));
    expect(verdict).toEqual({ ok: true, message: { ...order(), customer: { email: 'a@***', ssn: '12***', age: 40 } } });
    expect(input).toEqual(order());
  });

  it('inline confluent:tags on a property select its items; the field and its full name reach the expression', () => {
    const c = contract({ domainRules: [rule({ name: 'notes', kind: 'CONDITION', type: 'CEL_FIELD', tags: ['FREE_TEXT'], expr: "fullName == '$.notes' && size(value) < 20" })] });
    expect(sync(c.run('WRITE', order())).ok).toBe(true);
    const long = { ...order(), notes: ['ok', 'this note is far too long to keep'] };
    expect(sync(c.run('WRITE', long))).toMatchObject({ ok: false, failure: { rule: 'notes', field: 'notes[1]', reason: "Expr failed: 'fullName == '$.notes' && size(value) < 20'" } });
  });

  it('each visit binds its own field: name, tags and the record that holds it', () => {
    // Bindings are refilled per visit: a value of one field must never be seen with another field's name or tags.
    const c = contract(
      {
        domainRules: [
          rule({
            name: 'own',
            kind: 'CONDITION',
            type: 'CEL_FIELD',
            tags: ['PII'],
            expr: "'PII' in tags && (name == 'ssn' ? value == message.ssn && size(tags) == 1 : name == 'email' && value.contains('@'))",
          }),
        ],
      },
      { tags: { '**.ssn': ['PII'], '$.customer.email': ['PII'] } },
    );
    expect(sync(c.run('WRITE', order())).ok).toBe(true);
    expect(sync(c.run('WRITE', { ...order(), customer: { ...order().customer, email: 'nope' } }))).toMatchObject({ ok: false, failure: { field: 'customer.email' } });
  });

  it('a rule without tags sees every primitive field (by type name)', () => {
    const c = contract({ domainRules: [rule({ name: 'ints', kind: 'CONDITION', type: 'CEL_FIELD', expr: "typeName == 'INT' ; value >= 18" })] });
    expect(sync(c.run('WRITE', order())).ok).toBe(true);
    expect(sync(c.run('WRITE', { ...order(), customer: { ...order().customer, age: 12 } }))).toMatchObject({ ok: false, failure: { field: 'customer.age' } });
  });

  it('masks Avro fields by record full name, through nullable unions', () => {
    const avro = JSON.stringify({
      type: 'record',
      name: 'Person',
      namespace: 'acme',
      fields: [
        { name: 'name', type: 'string' },
        { name: 'ssn', type: ['null', 'string'], 'confluent:tags': ['PII'] },
        { name: 'address', type: { type: 'record', name: 'Address', fields: [{ name: 'street', type: 'string' }] } },
      ],
    });
    const c = contract({ domainRules: [mask] }, { tags: { 'acme.Address.street': ['PII'] } }, 'AVRO', avro);
    expect(sync(c.run('WRITE', { name: 'Ann', ssn: '123', address: { street: 'Main St' } }))).toEqual({ ok: true, message: { name: 'Ann', ssn: '12***', address: { street: 'Ma***' } } });
    expect(sync(c.run('WRITE', { name: 'Ann', ssn: null, address: { street: 'Main St' } })).message).toEqual({ name: 'Ann', ssn: null, address: { street: 'Ma***' } });
  });

  it('masks Protobuf fields by message full name, inline field_meta tags too', () => {
    const proto = `syntax = "proto3"; package acme; import "confluent/meta.proto";
      message Person { string name = 1; string ssn = 2 [(confluent.field_meta) = { tags: ["PII"] }]; repeated Phone phones = 3; }
      message Phone { string number = 1; int32 kind = 2; }`;
    const c = new CompiledContract({
      subject: 'people-value',
      version: 2,
      id: 9,
      codec: createCodec({
        schemaType: 'PROTOBUF',
        schema: proto,
        references: [
          {
            name: 'confluent/meta.proto',
            schema:
              'syntax = "proto3"; package confluent; import "google/protobuf/descriptor.proto"; message Meta { repeated string tags = 3; } extend google.protobuf.FieldOptions { Meta field_meta = 1088; }',
          },
        ],
      }),
      metadata: { tags: { 'acme.Phone.number': ['PII'] } },
      ruleSet: { domainRules: [mask] },
    });
    expect(sync(c.run('WRITE', { name: 'Ann', ssn: '123', phones: [{ number: '5551234', kind: 1 }] })).message).toEqual({ name: 'Ann', ssn: '12***', phones: [{ number: '55***', kind: 1 }] });
    // confluent/meta.proto is built in, as in Confluent's registry: no reference needed.
    const builtIn = contract({ domainRules: [mask] }, undefined, 'PROTOBUF', proto);
    expect(sync(builtIn.run('WRITE', { name: 'Ann', ssn: '123', phones: [] })).message).toEqual({ name: 'Ann', ssn: '12***', phones: [] });
  });

  it('of two CEL_FIELD transforms with the same tags, only the first runs on write', () => {
    const second = { ...mask, name: 'mask-again', expr: "'REDACTED'" };
    const c = contract({ domainRules: [mask, second] }, { tags: { '**.ssn': ['PII'] } });
    expect((sync(c.run('WRITE', order())).message as ReturnType<typeof order>).customer.ssn).toBe('12***');
  });

  it('a condition that fails after a transform dead-letters the event as sent', () => {
    const c = contract({ domainRules: [mask, rule({ name: 'later', expr: 'false', onFailure: 'DLQ', params: { 'dlq.topic': 'd' } })] }, { tags: { '**.ssn': ['PII'] } });
    expect(sync(c.run('WRITE', order())).message).toEqual(order());
  });
});

describe('runWriteRules on a batch', () => {
  // The conditions a passing event clears without apply (CompiledContract.checker): a CEL condition and a CEL_FIELD one.
  const conditions = [
    rule({ name: 'amount', expr: 'message.amount > 0.0' }),
    rule({ name: 'ssnShort', type: 'CEL_FIELD', tags: ['PII'], expr: 'size(value) <= 11' }),
    rule({ name: 'eurOnly', expr: "message.currency == 'EUR'", onFailure: 'DLQ', params: { 'dlq.topic': 'dead' } }),
  ];
  const metadata = { tags: { '**.ssn': ['PII'] } };
  const codec = createCodec({ schemaType: 'JSON', schema: JSON.stringify(ORDER_JSON), references: [] });
  const results = (c: CompiledContract, events: unknown[]): RuleResults => {
    const run = runWriteRules(c, events, codec);
    if (run instanceof Promise) throw new Error('expected a synchronous run');
    return run;
  };

  it('refuses and dead-letters exactly the events that break a rule, naming rule, version and field; the others stay as sent', () => {
    const c = contract({ domainRules: conditions }, metadata);
    const events = [order(), { ...order(), customer: { ...order().customer, ssn: '123-45-6789-0' } }, order(), { ...order(), amount: 0 }, { ...order(), currency: 'USD' }, order()];
    const sent = JSON.stringify(events);
    const out = results(c, events);
    expect([...out.refused]).toEqual([
      [1, { rule: 'ssnShort', subject: 'orders-value', version: 1, mode: 'WRITE', action: 'ERROR', reason: "Expr failed: 'size(value) <= 11'", field: 'customer.ssn' }],
      [3, { rule: 'amount', subject: 'orders-value', version: 1, mode: 'WRITE', action: 'ERROR', reason: "Expr failed: 'message.amount > 0.0'" }],
    ]);
    expect([...out.deadLettered]).toEqual([
      [4, { rule: 'eurOnly', subject: 'orders-value', version: 1, mode: 'WRITE', action: 'DLQ', dlqTopic: 'dead', reason: "Expr failed: 'message.currency == 'EUR''" }],
    ]);
    expect(out.events.every((e, i) => e === events[i])).toBe(true);
    expect(out.events).not.toBe(events);
    expect(JSON.stringify(events)).toBe(sent);
  });

  it('a condition the closures cannot decide (a missing field) fails as apply fails it, with CEL’s error text', () => {
    const c = contract({ domainRules: conditions }, metadata);
    const { amount: _dropped, ...noAmount } = order();
    const out = results(c, [order(), noAmount, order()]);
    const alone = sync(c.run('WRITE', noAmount));
    expect(alone.ok).toBe(false);
    expect([...out.refused]).toEqual([[1, (alone as Extract<RuleVerdict, { ok: false }>).failure]]);
    expect(out.refused.get(1)).toMatchObject({ rule: 'amount', reason: expect.stringMatching(/amount/) as unknown });
  });

  it('CEL conditions checked as one still refuse each event by its own rule, as each alone does', () => {
    const c = contract(
      {
        domainRules: [
          rule({ name: 'positive', expr: 'message.amount > 0.0' }),
          rule({ name: 'idShape', expr: "message.orderId.startsWith('o-')" }),
          rule({ name: 'euro', expr: "message.currency == 'EUR'" }),
        ],
      },
      metadata,
    );
    const events = [order(), { ...order(), amount: -1 }, { ...order(), orderId: 'x-1' }, { ...order(), currency: 'USD' }, order()];
    const out = results(c, events);
    expect([...out.refused].map(([i, f]) => [i, f.rule])).toEqual([
      [1, 'positive'],
      [2, 'idShape'],
      [3, 'euro'],
    ]);
    expect(out.events.every((e, i) => e === events[i])).toBe(true);
  });

  it('a mask that applies to one event of a batch changes that event alone, on a copy, and never another', () => {
    // The guard applies the mask to ssn values starting with 9 only: event 1's.
    const mask = rule({ name: 'mask', kind: 'TRANSFORM', type: 'CEL_FIELD', tags: ['PII'], expr: "value.startsWith('9') ; 'XXX'" });
    const c = contract({ domainRules: [...conditions, mask] }, metadata);
    const events = [order(), { ...order(), customer: { ...order().customer, ssn: '987-65-4321' } }, order()];
    const sent = JSON.stringify(events);
    const out = results(c, events);
    expect(out.refused.size + out.deadLettered.size).toBe(0);
    expect(out.events).toEqual([order(), { ...order(), customer: { ...order().customer, ssn: 'XXX' } }, order()]);
    expect(JSON.stringify(events)).toBe(sent);
  });
});

describe('JSONATA migrations', () => {
  const v1 = JSON.stringify({ type: 'object', properties: { size: { type: 'number' } } });
  const v2 = JSON.stringify({ type: 'object', properties: { height: { type: 'number' } } });
  const migrations: RuleSet = {
    migrationRules: [
      { name: 'up', kind: 'TRANSFORM', mode: 'UPGRADE', type: 'JSONATA', expr: "$merge([$sift($, function($v, $k) {$k != 'size'}), {'height': $.'size'}])" },
      { name: 'down', kind: 'TRANSFORM', mode: 'DOWNGRADE', type: 'JSONATA', expr: "$merge([$sift($, function($v, $k) {$k != 'height'}), {'size': $.'height'}])" },
    ],
  };
  const versions = [contract({}, undefined, 'JSON', v1, 1), contract(migrations, undefined, 'JSON', v2, 2)];

  it('upgrades a version-1 event for a version-2 reader, and back', async () => {
    expect(await migrate(versions, 1, 2, { size: 3, name: 'box' })).toEqual({ ok: true, message: { name: 'box', height: 3 } });
    expect(await migrate(versions, 2, 1, { height: 3 })).toEqual({ ok: true, message: { size: 3 } });
    expect(await migrate(versions, 2, 2, { height: 3 })).toEqual({ ok: true, message: { height: 3 } });
  });

  it('a JSONATA rule that throws fails with its text; runs are asynchronous only when JSONATA runs', async () => {
    const c = contract({ migrationRules: [{ name: 'bad', kind: 'TRANSFORM', mode: 'UPGRADE', type: 'JSONATA', expr: '$number("x")' }] }, undefined, 'JSON', v2, 2);
    const run = c.run('UPGRADE', { height: 1 });
    expect(run).toBeInstanceOf(Promise);
    expect(await run).toMatchObject({ ok: false, failure: { rule: 'bad', mode: 'UPGRADE', action: 'ERROR', reason: expect.stringMatching(/D3030|Unable to cast/) } });
  });

  it('gives plain data, which a CEL rule after it can read (JSONata objects have a null prototype)', async () => {
    const migrated = await migrate(versions, 1, 2, { size: 3, tags: ['a', 'b'] });
    expect(migrated.ok && Object.getPrototypeOf(migrated.message)).toBe(Object.prototype);
    const reader = contract({ domainRules: [rule({ name: 'tall', mode: 'READ', expr: "message.height > 2.0 && size(message.tags) == 2 && message.tags[1] == 'b'" })] }, undefined, 'JSON', v2, 2);
    expect(sync(reader.run('READ', migrated.message))).toMatchObject({ ok: true });
  });

  it('JSONATA regexes run on RE2', async () => {
    const c = contract(
      { migrationRules: [{ name: 're', kind: 'TRANSFORM', mode: 'UPGRADE', type: 'JSONATA', expr: '{"ok": $contains(s, /^(a+)+$/), "s": $replace(s, /a/, "b")}' }] },
      undefined,
      'JSON',
      v2,
      2,
    );
    expect(await c.run('UPGRADE', { s: `${'a'.repeat(3000)}!` })).toMatchObject({ ok: true, message: { ok: false } });
    expect(await c.run('UPGRADE', { s: 'xaya' })).toEqual({ ok: true, message: { ok: false, s: 'xbyb' } });
  });
});

describe('compilation is cached', () => {
  it('one CompiledContract per id, subject and version', () => {
    const cache = new ContractCache();
    const target = { subject: 's', version: 1, id: 1, codec: createCodec({ schemaType: 'JSON', schema: '{}', references: [] }), ruleSet: { domainRules: [rule({ name: 'r', expr: 'true' })] } };
    expect(cache.get(target)).toBe(cache.get({ ...target }));
    expect(cache.get(target)).not.toBe(cache.get({ ...target, version: 2 }));
  });
});

describe('field path globs (Confluent wildcard matcher)', () => {
  it.each([
    ['eve', 'eve*', true],
    ['alice.bob.eve', 'a*.bob.eve', true],
    ['alice.bob.eve', 'a*.bob.e*', true],
    ['alice.bob.eve', 'a*', false],
    ['alice.bob.eve', 'a**', true],
    ['alice.bob.eve', 'alice.bob*', false],
    ['alice.bob.eve', 'alice.bob**', true],
    ['$.customer.ssn', '**.ssn', true],
    ['$.ssn', '**.ssn', true],
    ['$.customer.ssnx', '**.ssn', false],
  ])('%s ~ %s → %s', (name, glob, expected) => {
    expect(globMatcher(glob)(name)).toBe(expected);
  });
});

describe('properties', () => {
  it('a CEL condition agrees with the same predicate in JS for any amount and currency', () => {
    const c = contract({ domainRules: [rule({ name: 'p', expr: "message.amount > 0.0 && message.currency in ['EUR', 'USD']" })] });
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom('EUR', 'USD', 'GBP'), (amount, currency) => {
        expect(sync(c.run('WRITE', { ...order(), amount, currency })).ok).toBe(amount > 0 && currency !== 'GBP');
      }),
    );
  });

  it('a checker is run without the verdict of an event every rule passed untouched: undefined exactly then, else the same verdict', () => {
    const rules = [
      rule({ name: 'amount', expr: 'message.amount > 0.0' }),
      rule({ name: 'dlq', expr: "message.currency != 'USD'", onFailure: 'DLQ', params: { 'dlq.topic': 'dead' } }),
      rule({ name: 'notify', expr: "message.orderId != 'loud'", onSuccess: 'NONE', onFailure: 'ERROR' }),
      rule({ name: 'ssn', type: 'CEL_FIELD', tags: ['PII'], expr: 'size(value) <= 3' }),
      rule({ name: 'mask', kind: 'TRANSFORM', type: 'CEL_FIELD', tags: ['PII'], expr: "'***'" }),
      rule({ name: 'passOnly', expr: 'true', onSuccess: 'ERROR' }),
    ];
    const metadata = { tags: { '**.ssn': ['PII'] } };
    // One contract per set of rules: compiling one per run is most of the test's time.
    const contracts = new Map<string, CompiledContract>();
    const contractOf = (domainRules: Rule[]) => {
      const key = domainRules.map((r) => r.name).join();
      let c = contracts.get(key);
      if (c === undefined) contracts.set(key, (c = contract({ domainRules }, metadata)));
      return c;
    };
    fc.assert(
      fc.property(
        fc.subarray(rules, { minLength: 1 }),
        fc.double({ noNaN: true, min: -1, max: 1 }),
        fc.constantFrom('EUR', 'USD'),
        fc.constantFrom('o-1', 'loud'),
        fc.string({ maxLength: 5 }),
        (domainRules, amount, currency, orderId, ssn) => {
          const c = contractOf(domainRules);
          const input = { ...order(), amount, currency, orderId, customer: { email: 'a@b.c', ssn, age: 1 } };
          const checked = c.checker('WRITE')(input);
          const verdict = sync(c.run('WRITE', input));
          if (verdict.ok && verdict.message === input) expect(checked).toBeUndefined();
          else expect(sync(checked!)).toEqual(verdict);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('masking changes exactly the tagged fields and never the input', () => {
    const c = contract({ domainRules: [rule({ name: 'mask', kind: 'TRANSFORM', type: 'CEL_FIELD', tags: ['PII'], expr: "'***'" })] }, { tags: { '**.ssn': ['PII'], '**.email': ['PII'] } });
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.string(), (orderId, email, ssn) => {
        const input = { ...order(), orderId, customer: { email, ssn, age: 1 } };
        const before = JSON.stringify(input);
        const verdict = sync(c.run('WRITE', input));
        expect(JSON.stringify(input)).toBe(before);
        expect(verdict.message).toEqual({ ...input, customer: { email: '***', ssn: '***', age: 1 } });
      }),
    );
  });
});
