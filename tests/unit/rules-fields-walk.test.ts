import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createCodec } from '../../core/formats/index.ts';
import { compileWalk, fieldShape, pruneShape, walkFields, type FieldVisitor } from '../../rules/fields.ts';

/**
 * compileWalk (the flat accessor list a CEL_FIELD rule walks) against
 * walkFields (the tree walk): the same visits, in the same order, with the
 * same paths, containers and values, and the same writes, for random messages
 * and every choice of tagged fields.
 */

const AVRO = JSON.stringify({
  type: 'record',
  name: 'Order',
  namespace: 'acme',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'email', type: ['null', 'string'], default: null },
    {
      name: 'customer',
      type: {
        type: 'record',
        name: 'Customer',
        fields: [
          { name: 'ssn', type: 'string' },
          { name: 'age', type: 'int' },
          { name: 'address', type: { type: 'record', name: 'Address', fields: [{ name: 'street', type: 'string' }] } },
        ],
      },
    },
    { name: 'billing', type: ['null', 'acme.Address'], default: null },
    { name: 'notes', type: { type: 'array', items: 'string' } },
  ],
});
const JSON_SCHEMA = JSON.stringify({
  type: 'object',
  properties: {
    id: { type: 'string' },
    email: { type: ['string', 'null'] },
    customer: { type: 'object', properties: { ssn: { type: 'string' }, age: { type: 'integer' }, address: { type: 'object', properties: { street: { type: 'string' } } } } },
    notes: { type: 'array', items: { type: 'string' } },
  },
});
const FIELDS = ['id', 'email', 'customer', 'ssn', 'age', 'address', 'street', 'billing', 'notes'];

const leaf = fc.oneof(fc.string({ maxLength: 3 }), fc.integer(), fc.constant(null), fc.constant(undefined), fc.boolean());
const { node } = fc.letrec<{ node: unknown }>((tie) => ({
  node: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('node'), { maxLength: 2 }), fc.dictionary(fc.constantFrom(...FIELDS), tie('node'), { maxKeys: 4 })),
}));
const message = fc.oneof(node, fc.dictionary(fc.constantFrom(...FIELDS), node, { maxKeys: 6 }));

function record(walk: (value: unknown, visit: FieldVisitor, write: boolean) => unknown, value: unknown, write: boolean) {
  const visits: unknown[] = [];
  const out = walk(
    value,
    (field, type, v, container, path) => {
      visits.push({ field: field.fullName, type, value: v, path, container: container === undefined ? undefined : JSON.stringify(container) });
      return write ? `<${path}>` : v;
    },
    write,
  );
  return { visits, out: JSON.stringify(out) };
}

describe('compileWalk', () => {
  for (const [schemaType, schema] of [
    ['AVRO', AVRO],
    ['JSON', JSON_SCHEMA],
  ] as const) {
    it(`visits and writes as walkFields does (${schemaType})`, () => {
      const codec = createCodec({ schemaType, schema, references: [] });
      fc.assert(
        fc.property(fc.subarray(FIELDS), message, fc.boolean(), (chosen, value, write) => {
          const metadata = { tags: Object.fromEntries(chosen.map((name) => [`**.${name}`, ['T']])) };
          const selected = pruneShape(fieldShape(codec, metadata), (f) => f.tags.has('T'));
          if (selected === undefined) return;
          const copy = (v: unknown) => (v === undefined ? undefined : structuredClone(v));
          expect(record(compileWalk(selected), copy(value), write)).toEqual(record((v, visit, w) => walkFields(selected, v, visit, w), copy(value), write));
        }),
        { numRuns: 500 },
      );
    });
  }
});
