import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { parse as parseLosslessly } from 'lossless-json';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config.ts';
import { MalformedBodyError } from '../../core/errors.ts';
import { JsonTooDeepError, NonFiniteNumberError, parseJson, requireJsonDepth } from '../../core/json.ts';
import { createLogger } from '../../core/logger.ts';
import { parseJsonBody, parseNdjsonBody } from '../../producers/body-parsers.ts';
import { loadTopology } from '../../topology/load.ts';
import { ingressApp } from '../support/ingress-app.ts';
import { memoryRegistryApp } from '../support/memory-registry.ts';

/**
 * The depth pre-scan (core/json.ts) runs before JSON.parse on every JSON body of user input: its verdict must be
 * the depth JSON.parse would find, whatever strings, escapes and numbers the text holds, and its number check
 * must send every unsafe integer and every non-finite number to the exact path.
 */
const MiB = 1024 * 1024;
const RUNS = Number(process.env.SLUICE_FUZZ_RUNS ?? 1000);

const tooDeep = (text: string, maxDepth: number): boolean => {
  try {
    requireJsonDepth(text, maxDepth);
    return false;
  } catch (error) {
    expect(error).toBeInstanceOf(JsonTooDeepError);
    return true;
  }
};

/** The depth of the value JSON.parse finds (iterative, as deep values may come up). */
function parsedDepth(text: string): number {
  const stack: [unknown, number][] = [[JSON.parse(text), 1]];
  let deepest = 0;
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (item === null || typeof item !== 'object') continue;
    deepest = Math.max(deepest, depth);
    for (const child of Object.values(item)) stack.push([child, depth + 1]);
  }
  return deepest;
}

// Strings made of what could fool a scanner: brackets, quotes, backslashes (escaped runs of any length), \u escapes.
const trickyString = fc.string({ unit: fc.constantFrom('[', ']', '{', '}', '"', '\\', 'a', 'e', '1', ':', ',', '\n', '\u2028', '😀', '\ud800'), maxLength: 12 });
const rawEscapes = fc.constantFrom('"\\u005b\\u007b"', '"\\\\"', '"\\\\\\""', '"\\\\\\\\"', '"\\"[{"', '"a\\\\"', '"\\/"');
const numberText = fc.oneof(
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
  fc.tuple(fc.integer({ min: -99, max: 99 }), fc.nat(99_999), fc.constantFrom('e', 'E', 'e+', 'E-', 'e-'), fc.integer({ min: 0, max: 450 })).map(([i, f, e, x]) => `${i}.${f}${e}${x}`),
  fc.tuple(fc.bigInt({ min: 0n, max: 10n ** 20n }), fc.constantFrom('e', 'E+', 'e-'), fc.nat(400)).map(([i, e, x]) => `${i}${e}${x}`),
  fc.constantFrom('0', '-0', '9007199254740991', '9007199254740992', '-9007199254740993', '0.30000000000000004', '1e308', '1e309', '-1E400', '123456789012345678901234567890'),
);
const space = fc.constantFrom('', ' ', '\n', '\t', ' \r\n ');
/** JSON text with any nesting, built as text so that number spellings and escapes arrive exactly as written. */
const jsonText: fc.Arbitrary<string> = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    numberText,
    trickyString.map((s) => JSON.stringify(s)),
    rawEscapes,
    fc.constantFrom('true', 'false', 'null'),
    fc.tuple(fc.array(tie('value'), { maxLength: 4 }), space).map(([items, s]) => `[${s}${items.join(`${s},${s}`)}${s}]`),
    // Keys start with their index: a repeated key would leave JSON.parse's value shallower than the text.
    fc
      .tuple(
        fc.array(
          fc.tuple(
            fc.oneof(
              trickyString.map((s) => JSON.stringify(s)),
              rawEscapes,
            ),
            tie('value'),
          ),
          { maxLength: 4 },
        ),
        space,
      )
      .map(([pairs, s]) => `{${s}${pairs.map(([k, v], i) => `"${i}${k.slice(1)}${s}:${s}${v}`).join(`${s},`)}${s}}`),
    // Deep chains, so that depths around real bounds come up.
    fc
      .tuple(fc.integer({ min: 1, max: 200 }), fc.constantFrom(['[', ']'], ['{"[":', '}'], ['[{"a\\"":', '}]']), tie('value'))
      .map(([n, [open, close], v]) => `${open!.repeat(n)}${v}${close!.repeat(n)}`),
  ),
})).value;

/**
 * Exact longs as BigInts, as core/json.ts reads them; the reference the fast path must agree with. Read by
 * lossless-json, not V8: V8's JSON.parse misreads some escaped keys after other parses (nodejs/node#63785).
 */
function exactly(text: string): unknown {
  return parseLosslessly(text, null, (source) => {
    const value = Number(source);
    return !Number.isSafeInteger(value) && /^-?\d+$/.test(source) ? BigInt(source) : value;
  });
}

describe('the JSON depth pre-scan', () => {
  it('agrees with the depth JSON.parse finds, whatever the strings, escapes and whitespace', () => {
    fc.assert(
      fc.property(jsonText, fc.integer({ min: -2, max: 2 }), (text, delta) => {
        const depth = parsedDepth(text);
        const bound = Math.max(0, depth + delta);
        expect(tooDeep(text, bound), `depth ${depth}, bound ${bound}: ${text.slice(0, 200)}`).toBe(depth > bound);
      }),
      { numRuns: RUNS },
    );
  }, 300_000);

  it('leaves no unsafe integer or non-finite number to the plain parse', () => {
    fc.assert(
      fc.property(jsonText, (text) => {
        const reference = exactly(text);
        const infinite = JSON.stringify(JSON.parse(text, (_k, v: unknown) => (v === Infinity || v === -Infinity ? 'INFINITE' : v))).includes('"INFINITE"');
        if (infinite) expect(() => parseJson(text)).toThrow(NonFiniteNumberError);
        else expect(parseJson(text)).toEqual(reference);
      }),
      { numRuns: RUNS },
    );
  }, 300_000);

  it('names the byte offset of the bracket one level too deep, counting multi-byte characters before it', () => {
    const error = (() => {
      try {
        requireJsonDepth(`{"é😀":${'['.repeat(10)}]]]]]]]]]]}`, 3);
      } catch (e) {
        return e as JsonTooDeepError;
      }
      throw new Error('accepted');
    })();
    // {"é😀": is 1 + 1 + 2 + 4 + 1 + 1 = 10 bytes; the third '[' (depth 4) is 2 further.
    expect(error.byteOffset).toBe(12);
    expect(error.message).toBe('is nested more than 3 arrays/objects deep (byte offset 12)');
  });

  it('is not fooled by brackets in strings or an escaped quote before them', () => {
    const deepInString = JSON.stringify({ a: '['.repeat(1000), b: '\\"{{{{' });
    expect(tooDeep(deepInString, 1)).toBe(false);
    expect(tooDeep('["\\\\", [[[1]]]]', 3)).toBe(true); // the string is one backslash: the brackets after it count
    expect(tooDeep('["\\\\\\"[[[", 1]', 1)).toBe(false); // \\ \" : the quote is escaped and the brackets are text
    expect(tooDeep(`"${'['.repeat(100)}`, 1)).toBe(false); // unterminated: JSON.parse refuses it
  });
});

describe('deep bodies before JSON.parse', () => {
  const deepArray = `${'['.repeat(MiB / 2)}${']'.repeat(MiB / 2)}`;
  const deepObject = `${'{"a":'.repeat(MiB / 6 - 20)}1${'}'.repeat(MiB / 6 - 20)}`;

  it('the ingress parsers refuse nesting beyond the bound (400, naming the byte offset) and accept it at the bound', () => {
    expect(parseJsonBody(`${'['.repeat(128)}${']'.repeat(128)}`, 128).batch).toBe(true);
    expect(() => parseJsonBody(`${'['.repeat(129)}${']'.repeat(129)}`, 128)).toThrow(
      expect.objectContaining({ statusCode: 400, message: 'body is nested more than 128 arrays/objects deep (byte offset 128)' }),
    );
    expect(() => parseJsonBody(deepObject, 128)).toThrow(expect.objectContaining({ statusCode: 400, message: expect.stringContaining('byte offset 640') }));
    expect(() => parseNdjsonBody(`{"a":1}\n  ${'['.repeat(10)}${']'.repeat(10)}\n`, 4)).toThrow(
      expect.objectContaining({ message: 'line 2 is nested more than 4 arrays/objects deep (byte offset 4 of the line)' }),
    );
    expect(() => parseJsonBody(deepArray, 128)).toThrow(MalformedBodyError);
  });

  describe('over HTTP', () => {
    const config = loadConfig({ SLUICE_LOG_LEVEL: 'silent' });
    const logger = createLogger(config, 'json-depth');
    let ingress: FastifyInstance;
    let registry: FastifyInstance;
    beforeAll(async () => {
      ingress = (await ingressApp(config, loadTopology(new URL('../../topology/sluice.topology.yaml', import.meta.url).pathname), logger)).app;
      registry = memoryRegistryApp(config, logger).app;
      await registry.ready();
    });
    afterAll(async () => {
      await ingress.close();
      await registry.close();
    });

    it('the ingress answers 400 SLUICE_MALFORMED_BODY to 1 MiB nested 500k deep, as JSON or NDJSON', async () => {
      for (const [type, payload] of [
        ['application/json', deepArray],
        ['application/json', deepObject],
        ['application/x-ndjson', `{"orderId":"o-1"}\n${deepObject}`],
      ] as const) {
        const response = await ingress.inject({ method: 'POST', url: '/v1/orders', headers: { 'content-type': type }, payload });
        expect(response.statusCode, response.body).toBe(400);
        expect(response.json()).toMatchObject({ error: 'SLUICE_MALFORMED_BODY', message: expect.stringMatching(/nested more than 128 arrays\/objects deep \(byte offset \d+( of the line)?\)/) });
      }
    });

    it('the registry answers 400 to a deep body and 422 to a deep schema text', async () => {
      const body = await registry.inject({ method: 'POST', url: '/subjects/deep/versions', headers: { 'content-type': 'application/json' }, payload: deepArray });
      expect(body.statusCode).toBe(400);
      expect(body.json()).toEqual({ error_code: 400, message: 'Malformed JSON request body: the body is nested more than 128 arrays/objects deep (byte offset 128)' });
      const schema = await registry.inject({
        method: 'POST',
        url: '/subjects/deep/versions',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ schemaType: 'JSON', schema: deepObject.slice(0, MiB / 2) }), // escaped, the whole would be over the limit
      });
      expect(schema.statusCode).toBe(422);
      expect(schema.json()).toEqual({ error_code: 42201, message: 'Invalid JSON schema: "schema" is nested more than 128 arrays/objects deep (byte offset 640)' });
    });
  });
});
