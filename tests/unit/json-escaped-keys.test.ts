import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NonFiniteNumberError, parseJson } from '../../core/json.ts';
import { parseJsonBody } from '../../producers/body-parsers.ts';

/**
 * V8's JSON.parse (Node 24.21, nodejs/node#63785) can read an escaped object key wrongly once an earlier parse in
 * the process met a similar one: after `{"h":[],"\\":0}`, the key of `{"h":1,"\"":2}` comes back as `\`. parseJson
 * reads texts with escaped keys with a strict parser instead.
 */
describe('JSON with escaped object keys', () => {
  const poison = () => JSON.parse('{"h":[],"\\\\":0}') as unknown;

  it('reads a key V8 misreads after the poisoning parse, as the client wrote it', () => {
    poison();
    expect(Object.keys(parseJson('{"h":1,"\\"":2}') as object)).toEqual(['h', '"']);
    poison();
    const { events } = parseJsonBody('{"h":1,"\\"":2}');
    expect(Object.keys(events[0] as object)).toEqual(['h', '"']);
  });

  it('keeps the 64-bit and non-finite rules on that path: exact BigInts, and a number beyond a double refused naming its path', () => {
    const value = parseJson('{"k\\u0065y":12345678901234567890,"small":1.5,"n":[7]}') as Record<string, unknown>;
    expect(value).toEqual({ key: 12345678901234567890n, small: 1.5, n: [7] });
    expect(() => parseJson('{"k\\"":{"amount":1e400}}')).toThrowError(NonFiniteNumberError);
    expect(() => parseJson('{"k\\"":{"amount":1e400}}')).toThrowError(/k"\.amount/);
  });

  it('gives __proto__ as an own key, as JSON.parse does, without touching the prototype', () => {
    const value = parseJson('{"a\\u0062":1,"__proto__":{"polluted":true}}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.keys(value)).toEqual(['ab', '__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('round-trips any object whose keys need escapes, whatever was parsed before', () => {
    const key = fc.string({ unit: fc.constantFrom('"', '\\', 'h', '\n', 'é', '\u0001', 'x'), maxLength: 4 });
    fc.assert(
      fc.property(fc.array(fc.dictionary(key, fc.oneof(fc.integer(), fc.string(), fc.constant(null)), { maxKeys: 5 }), { minLength: 2, maxLength: 4 }), (objects) => {
        // Each object is parsed after the others: the earlier ones are what could poison V8's key cache.
        for (const object of objects) expect(parseJson(JSON.stringify(object))).toEqual(object);
      }),
      { numRuns: 300 },
    );
  });

  it('texts without an escaped key still take JSON.parse, escapes in values included', () => {
    expect(parseJson('{"a":"x\\"y:","b":"\\\\"}')).toEqual({ a: 'x"y:', b: '\\' });
    expect(parseJson('["\\":"]')).toEqual(['":']);
  });
});

describe('schema texts with escaped property names', () => {
  it('are kept as written when the registry normalizes and canonicalizes them', async () => {
    const { parseJsonText } = await import('../../core/json.ts');
    JSON.parse('{"h":[],"\\\\":0}');
    const schema = '{"type":"object","properties":{"h":{},"\\"":{"type":"string"}}}';
    expect(Object.keys((parseJsonText(schema) as { properties: object }).properties)).toEqual(['h', '"']);
    expect(parseJsonText('{"big":12345678901234567890}')).toEqual({ big: Number('12345678901234567890') });
  });
});
