import { parse } from '@bufbuild/cel';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileCel } from '../../rules/cel.ts';
import { celTestContext } from '../support/cel-context.ts';
import { compileFast, FAIL } from '../../rules/cel-compile.ts';

/**
 * The compiled closures (rules/cel-compile.ts) against @bufbuild/cel's own
 * program: for random expressions over random messages, the value or the
 * error text of compileCel equals the reference's (compileCel with
 * `reference`, @bufbuild/cel alone), and the closures decide most cases
 * themselves (else the property would hold by always deferring).
 */

const MAX = '9223372036854775807';
const MIN = '-9223372036854775808';

const literal = fc.constantFrom(
  '0',
  '1',
  '-1',
  '2',
  '3',
  '7',
  MAX,
  MIN,
  '0.0',
  '1.5',
  '-2.5',
  '2.0',
  '1e308',
  "''",
  "'a'",
  "'ab'",
  "'EUR'",
  "'k'",
  "'\\u00e9'",
  "'😀'",
  'true',
  'false',
  'null',
  '1u',
  "b'a'",
);
const reference = fc.constantFrom(
  'message',
  'message.a',
  'message.b',
  'message.s',
  'message.l',
  'message.m',
  'message.m.k',
  'message.m.a',
  'message.n',
  'message.missing',
  'value',
  'unbound',
  'int',
  'message.l[0]',
  "message.m['k']",
);
const presence = fc.constantFrom('has(message.a)', 'has(message.m.k)', 'has(message.missing)', 'has(message.s.x)', 'has(message.l.x)', 'has(unbound.x)', 'has(message.n.k)');
const pattern = fc.constantFrom("'^a'", "'a+'", "'('", "'[0-9]'", "''");

const { expr } = fc.letrec<{ expr: string }>((tie) => ({
  expr: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    literal,
    reference,
    presence,
    tie('expr').map((e) => `!${e}`),
    tie('expr').map((e) => `-${e}`),
    fc.tuple(tie('expr'), fc.constantFrom('==', '!=', '<', '<=', '>', '>=', '+', '-', '*', '/', '%', '&&', '||', 'in'), tie('expr')).map(([l, op, r]) => `(${l} ${op} ${r})`),
    fc.tuple(tie('expr'), tie('expr'), tie('expr')).map(([c, t, f]) => `(${c} ? ${t} : ${f})`),
    tie('expr').map((e) => `size(${e})`),
    tie('expr').map((e) => `${e}.size()`),
    fc.tuple(tie('expr'), fc.constantFrom('contains', 'startsWith', 'endsWith'), tie('expr')).map(([t, m, a]) => `${t}.${m}(${a})`),
    fc.tuple(tie('expr'), fc.oneof(pattern, tie('expr'))).map(([t, p]) => `${t}.matches(${p})`),
    fc.tuple(tie('expr'), tie('expr')).map(([c, i]) => `${c}[${i}]`),
    fc.array(tie('expr'), { maxLength: 3 }).map((es) => `[${es.join(', ')}]`),
    tie('expr').map((e) => `{'k': ${e}}`),
    tie('expr').map((e) => `message.l.exists(x, x == ${e})`),
    tie('expr').map((e) => `contains(${e}, 'a')`),
  ),
}));

const scalar = fc.oneof(
  fc.integer({ min: -5, max: 5 }),
  fc.double(),
  fc.bigInt({ min: BigInt(MIN), max: BigInt(MAX) }),
  fc.constantFrom(0n, 1n, 2n, BigInt(MAX), BigInt(MIN), -0, 1.5, 2),
  fc.string({ maxLength: 4 }),
  fc.constantFrom('a', 'ab', 'EUR', 'k', '😀', '\ud800', 'aa1'),
  fc.boolean(),
  fc.constant(null),
);
const odd = fc.constantFrom<unknown>(undefined, new Uint8Array([97]), new Map([['k', 1]]), () => 1);
const { value } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { arbitrary: scalar, weight: 6 },
    { arbitrary: odd, weight: 1 },
    { arbitrary: fc.array(tie('value'), { maxLength: 3 }), weight: 2 },
    { arbitrary: fc.dictionary(fc.constantFrom('a', 'k', 'b', 'constructor'), tie('value'), { maxKeys: 3 }), weight: 2 },
  ),
}));
const message = fc.record(
  { a: value, b: value, s: value, l: fc.oneof(fc.array(value, { maxLength: 3 }), value), m: fc.oneof(fc.dictionary(fc.constantFrom('a', 'k', 'b'), value, { maxKeys: 3 }), value), n: value },
  { requiredKeys: [] },
);

type Outcome = { value: unknown } | { error: string };
const outcome = (fn: () => unknown): Outcome => {
  try {
    return { value: fn() };
  } catch (error) {
    return { error: (error as Error).message };
  }
};

const context = celTestContext();

describe('compiled CEL closures', () => {
  it('give @bufbuild/cel’s value or error for random expressions over random messages', () => {
    let cases = 0;
    let decided = 0;
    fc.assert(
      fc.property(expr, fc.option(expr, { freq: 8 }), fc.array(message, { minLength: 1, maxLength: 4 }), value, (body, guard, messages, fieldValue) => {
        const text = guard === null ? body : `${guard}; ${body}`;
        let ref: ReturnType<typeof compileCel>;
        try {
          ref = compileCel(text, { reference: true });
        } catch (error) {
          // Does not parse (or too deep): the fast compile refuses it the same way.
          expect(() => compileCel(text)).toThrow((error as Error).message);
          return;
        }
        const fast = compileCel(text);
        const closures = compileFast(parse(body).expr, context);
        for (const m of messages) {
          const bindings = { message: m, value: fieldValue };
          expect(
            outcome(() => fast.guardPasses(bindings)),
            text,
          ).toEqual(outcome(() => ref.guardPasses(bindings)));
          expect(
            outcome(() => fast.evaluate(bindings)),
            text,
          ).toEqual(outcome(() => ref.evaluate(bindings)));
          cases++;
          const decision = closures === undefined ? undefined : outcome(() => closures(bindings));
          if (decision !== undefined && 'value' in decision && decision.value !== FAIL) decided++;
        }
      }),
      { numRuns: 2000 },
    );
    // Random expressions fail often (type mismatches, missing fields); still, a good share is decided without @bufbuild/cel.
    expect(decided / cases).toBeGreaterThan(0.1);
    // A few thousand expressions with their CEL reference take seconds on a busy machine.
  }, 120_000);

  it('decide the bench rules and typical contract rules without @bufbuild/cel', () => {
    const order = { amount: 12.5, currency: 'EUR', items: [{ sku: 'a', quantity: 2 }], orderId: 'bench-1', customer: { ssn: '123-45-6789', age: 40n } };
    const cases: [string, unknown][] = [
      ["message.amount > 0 && message.currency in ['EUR', 'USD', 'GBP', 'CHF', 'JPY']", true],
      ["size(message.items) > 0 && message.orderId.startsWith('bench-')", true],
      ['message.amount == 12.5 && message.items[0].quantity == 2', true],
      ["message.currency == 'EUR' ? message.amount <= 100 : true", true],
      ['message.customer.age >= 18', true],
      ["message.customer.ssn.matches('^[0-9]{3}-[0-9]{2}-[0-9]{4}$')", true],
      ["has(message.coupon) || message.orderId.endsWith('-1')", true],
      ['message.customer.age + 1', 41],
      ["'x' + message.currency", 'xEUR'],
    ];
    for (const [text, expected] of cases) {
      const closures = compileFast(parse(text).expr, context)!;
      expect(closures({ message: order }), text).toEqual(typeof expected === 'number' ? BigInt(expected) : expected);
      expect(compileCel(text).evaluate({ message: order }), text).toEqual(compileCel(text, { reference: true }).evaluate({ message: order }));
    }
    // Errors are CEL's, with its text: a double plus an int has no overload, a missing field is named.
    expect(() => compileCel('message.amount + 1').evaluate({ message: order })).toThrow("found no matching overload for '_+_' applied to '(double, int)'");
    expect(() => compileCel('message.nope > 1').evaluate({ message: order })).toThrow('field not found: nope');
    expect(() => compileCel('1 / (size(message.items) - 1)').evaluate({ message: order })).toThrow('divide by zero');
    expect(compileCel('message.nope > 1 && false').evaluate({ message: order })).toBe(false);
  });
});
