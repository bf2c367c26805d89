import { parse } from '@bufbuild/cel';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileCel } from '../../rules/cel.ts';
import { celTestContext } from '../support/cel-context.ts';
import { generateFast } from '../../rules/cel-codegen.ts';
import { compileFast, FAIL, type Expr } from '../../rules/cel-compile.ts';

/**
 * The generated functions (rules/cel-codegen.ts) against the closures (rules/cel-compile.ts) they replace: for random
 * expressions of the fast subset over random messages, both give the same value, both FAIL ("not decided"), or both
 * throw (the caller then asks @bufbuild/cel). rules-cel-fast.test.ts holds the closures to @bufbuild/cel itself.
 */

const literal = fc.constantFrom('0', '1', '-1', '2', '9223372036854775807', '0.0', '1.5', '-2.5', '1e308', "''", "'a'", "'EUR'", "'k'", "'😀'", 'true', 'false', 'null', '1u', "b'a'");
const reference = fc.constantFrom(
  'message',
  'message.a',
  'message.b',
  'message.s',
  'message.l',
  'message.m',
  'message.m.k',
  'message.m.a',
  'message.missing',
  'message.constructor',
  'value',
  'unbound',
  'int',
);
const presence = fc.constantFrom('has(message.a)', 'has(message.m.k)', 'has(message.missing)', 'has(message.s.x)', 'has(message.l.x)', 'has(unbound.x)', 'has(message.m.constructor)');
const list = fc.constantFrom("['EUR', 'USD']", '[]', "[1, 'a', null]", '[1.5, 2]', '[true]', "['a', message.a]");

const { expr } = fc.letrec<{ expr: string }>((tie) => ({
  expr: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    literal,
    reference,
    presence,
    list,
    tie('expr').map((e) => `!${e}`),
    fc.tuple(tie('expr'), fc.constantFrom('==', '!=', '<', '<=', '>', '>=', '&&', '||', '&&', '||', 'in', '+'), tie('expr')).map(([l, op, r]) => `(${l} ${op} ${r})`),
    fc.tuple(tie('expr'), list).map(([l, r]) => `(${l} in ${r})`),
    fc.tuple(tie('expr'), tie('expr'), tie('expr')).map(([c, t, f]) => `(${c} ? ${t} : ${f})`),
    tie('expr').map((e) => `size(${e})`),
    tie('expr').map((e) => `${e}.size()`),
    fc.tuple(tie('expr'), fc.constantFrom('contains', 'startsWith', 'endsWith'), tie('expr')).map(([t, m, a]) => `${t}.${m}(${a})`),
  ),
}));

const scalar = fc.oneof(
  fc.integer({ min: -3, max: 3 }),
  fc.double(),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.constantFrom(0n, 1n, 2n, -0, 1.5, 2, Number.NaN, 2 ** 63, 2n ** 63n - 1n),
  fc.string({ maxLength: 3 }),
  fc.constantFrom('a', 'EUR', 'k', '😀', '\ud800'),
  fc.boolean(),
  fc.constant(null),
);
const odd = fc.constantFrom<unknown>(undefined, new Uint8Array([97]), new Map([['k', 1]]), () => 1);
const { value } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { arbitrary: scalar, weight: 6 },
    { arbitrary: odd, weight: 2 },
    { arbitrary: fc.array(tie('value'), { maxLength: 3 }), weight: 2 },
    { arbitrary: fc.dictionary(fc.constantFrom('a', 'k', 'b', 'constructor'), tie('value'), { maxKeys: 3 }), weight: 2 },
  ),
}));
const message = fc.record({ a: value, b: value, s: value, l: value, m: fc.oneof(fc.dictionary(fc.constantFrom('a', 'k'), value, { maxKeys: 2 }), value, odd) }, { requiredKeys: [] });

type Outcome = { value: unknown } | { fail: true } | { threw: string };
const outcome = (fn: () => unknown): Outcome => {
  try {
    const v = fn();
    return v === FAIL ? { fail: true } : { value: v };
  } catch (error) {
    return { threw: (error as Error).message };
  }
};

const context = celTestContext();

describe('generated CEL functions', () => {
  it('decide as the closures do for random expressions of the fast subset over random messages', () => {
    let generated = 0;
    let tried = 0;
    fc.assert(
      fc.property(expr, fc.array(message, { minLength: 1, maxLength: 4 }), value, (text, messages, fieldValue) => {
        let root: Expr;
        try {
          root = parse(text).expr;
        } catch {
          return;
        }
        tried++;
        const fn = generateFast(root, context);
        if (fn === undefined) return;
        generated++;
        const closures = compileFast(root, context)!;
        expect(closures, text).toBeDefined();
        for (const m of messages) {
          const bindings = { message: m, value: fieldValue };
          expect(
            outcome(() => fn(bindings)),
            text,
          ).toEqual(outcome(() => closures(bindings)));
        }
      }),
      { numRuns: 3000 },
    );
    // Most generated expressions are in the subset: the property is not vacuous.
    expect(generated / tried).toBeGreaterThan(0.3);
  }, 120_000);

  it('isTrue says true only where evaluate gives true: a passing condition skipped on its word passes', () => {
    let decided = 0;
    fc.assert(
      fc.property(expr, fc.array(message, { minLength: 1, maxLength: 4 }), value, (text, messages, fieldValue) => {
        let program: ReturnType<typeof compileCel>;
        try {
          program = compileCel(text);
        } catch {
          return;
        }
        if (program.isTrue === undefined) return;
        for (const m of messages) {
          const bindings = { message: m, value: fieldValue };
          if (!program.isTrue(bindings)) continue;
          decided++;
          expect(
            outcome(() => program.evaluate(bindings)),
            text,
          ).toEqual({ value: true });
        }
      }),
      { numRuns: 2000 },
    );
    // Not vacuous: random expressions are true on some messages (about 100 of the 2000 runs).
    expect(decided).toBeGreaterThan(30);
    // A guard before `;` decides whether the rule runs at all: no isTrue for it.
    expect(compileCel('message.a ; true').isTrue).toBeUndefined();
  }, 120_000);

  it('size() of a string against a bound counts code points, whether or not the length alone decides', () => {
    // Length (UTF-16 units) at most the bound decides `<=` and `<` at once; a longer string is counted (😀 is 2 units, 1 point).
    const cases: [string, string, boolean][] = [
      ['size(value) <= 2', 'ab', true],
      ['size(value) <= 2', 'abc', false],
      ['size(value) <= 2', '😀😀', true],
      ['size(value) <= 2', '😀😀😀', false],
      ['size(value) < 2', '😀', true],
      ['size(value) < 2', '😀😀', false],
      ['size(value) <= 0', '', true],
    ];
    for (const [text, value, expected] of cases) {
      const root = parse(text).expr;
      expect(generateFast(root, context)!({ value }), `${text} on ${value}`).toBe(expected);
      expect(compileCel(text).evaluate({ value }), `${text} on ${value}`).toBe(expected);
    }
  });

  it('decide as the closures do on every comparison, equality and `in` of edge values', () => {
    const edges: unknown[] = [0, -0, 1, 1.5, 2 ** 63, -(2 ** 63), Number.NaN, Infinity, 0n, 1n, 2n ** 63n - 1n, -(2n ** 63n), '', 'a', 'EUR', '😀', 'a😀b', true, false, null, [], [1], {}, { k: 1 }];
    const literals = ['0', '1', '-1', '9223372036854775807', '-9223372036854775808', '1.5', '0.0', "'a'", "''", 'true', 'null', "['a']", '[1, 1.5]'];
    let compared = 0;
    for (const op of ['==', '!=', '<', '<=', '>', '>=', 'in'])
      for (const lit of literals)
        for (const text of [`message.a ${op} ${lit}`, `${lit} ${op} message.a`, `!(message.a ${op} ${lit}) || message.b`, `size(message.a) ${op} ${lit}`]) {
          const root = parse(text).expr;
          const fn = generateFast(root, context);
          if (fn === undefined) continue;
          const closures = compileFast(root, context)!;
          for (const a of edges)
            for (const b of [true, false, 1]) {
              const bindings = { message: { a, b } };
              expect(
                outcome(() => fn(bindings)),
                `${text} with ${String(a)}`,
              ).toEqual(outcome(() => closures(bindings)));
              compared++;
            }
        }
    expect(compared).toBeGreaterThan(5000);
  });

  it('generate the bench rules and typical conditions, and leave the rest to the closures', () => {
    for (const text of [
      "message.amount > 0 && message.currency in ['EUR', 'USD', 'GBP', 'CHF', 'JPY']",
      "size(message.items) > 0 && message.orderId.startsWith('bench-')",
      'size(value) <= 64',
      "has(message.coupon) || message.currency != 'EUR'",
      'message.a == 1.5 ? !message.b : message.s.contains(value)',
    ])
      expect(generateFast(parse(text).expr, context), text).toBeDefined();
    for (const text of ['message.a + 1', 'message.l[0]', "message.s.matches('a')", 'message.l.exists(x, x == 1)', "{'k': 1}", '1u', '[message.a]', '-message.a'])
      expect(generateFast(parse(text).expr, context), text).toBeUndefined();
  });

  it('put no rule text into the generated source: string literals and field names are data', () => {
    // In CEL: a string closing a JS quote, a statement (no `;`: compileCel reads one as the guard's end), a comment, a line separator, a template, a backslash.
    const evil = "') + globalThis.pwned = 1 //\u2028*/ ${x} \\";
    const celText = `"') + globalThis.pwned = 1 //\\u2028*/ \${x} \\\\"`;
    const order = { currency: evil, pwnedField: 1 };
    const text = `has(message.pwnedField) && message.currency == ${celText} && !(message.currency in ['pwned', "\\\\"])`;
    const fn = generateFast(parse(text).expr, context)!;
    expect(fn).toBeDefined();
    expect(fn({ message: order })).toBe(true);
    expect(fn.toString()).not.toMatch(/pwned|currency/);
    expect((globalThis as { pwned?: unknown }).pwned).toBeUndefined();
    expect(compileCel(text).evaluate({ message: order })).toBe(compileCel(text, { reference: true }).evaluate({ message: order }));
  });
});
