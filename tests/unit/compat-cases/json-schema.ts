/**
 * JSON Schema compatibility cases, each from a rule of Confluent's
 * documentation ("Schema Evolution and Compatibility" — JSON Schema section —
 * and the JSON Schema serdes page's "Understanding JSON Schema compatibility"
 * with open, closed and partially open content models). `old` is the
 * registered version, `new` the candidate; `backward` is the documented
 * verdict under BACKWARD (new reads old), and `code` Confluent's difference
 * type named in the refusal.
 */
export interface JsonSchemaCase {
  name: string;
  rule: string;
  old: object;
  new: object;
  backward: boolean;
  code?: string;
  path?: string;
}

const obj = (properties: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ type: 'object', properties, ...extra });
const closed = (properties: Record<string, unknown>, extra: Record<string, unknown> = {}) => obj(properties, { additionalProperties: false, ...extra });
const str = { type: 'string' };
const int = { type: 'integer' };

export const JSON_SCHEMA_CASES: JsonSchemaCase[] = [
  {
    name: 'adding a property to an open content model',
    rule: 'Open content model: a new property may clash with a value old documents already held under that name — PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL',
    old: obj({ a: str }),
    new: obj({ a: str, b: int }),
    backward: false,
    code: 'PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL',
    path: 'b',
  },
  {
    name: 'adding an optional property to a closed content model',
    rule: 'Closed content model: old documents cannot hold the new property — OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL is compatible',
    old: closed({ a: str }),
    new: closed({ a: str, b: int }),
    backward: true,
  },
  {
    name: 'adding a required property without a default to a closed content model',
    rule: 'Old documents lack a newly required property — REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL',
    old: closed({ a: str }),
    new: closed({ a: str, b: int }, { required: ['b'] }),
    backward: false,
    code: 'REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL',
    path: 'b',
  },
  {
    name: 'adding a required property with a default to a closed content model',
    rule: 'A default fills the property for old documents — REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL is compatible',
    old: closed({ a: str }),
    new: closed({ a: str, b: { type: 'integer', default: 0 } }, { required: ['b'] }),
    backward: true,
  },
  {
    name: 'adding an empty-schema property to an open content model',
    rule: 'A property accepting anything cannot clash — PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL is compatible',
    old: obj({ a: str }),
    new: obj({ a: str, b: {} }),
    backward: true,
  },
  {
    name: 'removing a property from an open content model',
    rule: 'The open reader still accepts the old property as an additional one — PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL is compatible',
    old: obj({ a: str, b: int }),
    new: obj({ a: str }),
    backward: true,
  },
  {
    name: 'removing a property from a closed content model',
    rule: 'The closed reader refuses old documents that hold the removed property — PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL',
    old: closed({ a: str, b: int }),
    new: closed({ a: str }),
    backward: false,
    code: 'PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL',
    path: 'b',
  },
  {
    name: 'adding a property covered by a partially open content model',
    rule: 'Partially open model: additionalProperties {type: integer} already constrained the name — PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL is compatible',
    old: obj({ a: str }, { additionalProperties: int }),
    new: obj({ a: str, b: { type: 'number' } }, { additionalProperties: int }),
    backward: true,
  },
  {
    name: 'adding a property not covered by a partially open content model',
    rule: 'The new property accepts less than additionalProperties allowed — PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
    old: obj({ a: str }, { additionalProperties: { type: 'number' } }),
    new: obj({ a: str, b: int }, { additionalProperties: { type: 'number' } }),
    backward: false,
    code: 'PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
    path: 'b',
  },
  {
    name: 'removing a property not covered by a partially open content model',
    rule: "The reader's additionalProperties must accept what the removed property held — PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    old: obj({ a: str, b: str }, { additionalProperties: int }),
    new: obj({ a: str }, { additionalProperties: int }),
    backward: false,
    code: 'PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
    path: 'b',
  },
  {
    name: 'closing an open content model',
    rule: 'Turning additionalProperties from true to false refuses documents that had extras — ADDITIONAL_PROPERTIES_REMOVED',
    old: obj({ a: str }),
    new: closed({ a: str }),
    backward: false,
    code: 'ADDITIONAL_PROPERTIES_REMOVED',
  },
  {
    name: 'opening a closed content model',
    rule: 'Allowing additional properties widens what is accepted — ADDITIONAL_PROPERTIES_ADDED is compatible',
    old: closed({ a: str }),
    new: obj({ a: str }),
    backward: true,
  },
  {
    name: 'making an existing property required',
    rule: 'Old documents may lack it — REQUIRED_ATTRIBUTE_ADDED',
    old: obj({ a: str }),
    new: obj({ a: str }, { required: ['a'] }),
    backward: false,
    code: 'REQUIRED_ATTRIBUTE_ADDED',
    path: 'a',
  },
  {
    name: 'making a required property optional',
    rule: 'REQUIRED_ATTRIBUTE_REMOVED is compatible',
    old: obj({ a: str }, { required: ['a'] }),
    new: obj({ a: str }),
    backward: true,
  },
  {
    name: 'widening integer to number',
    rule: 'Every integer is a number — TYPE_EXTENDED is compatible',
    old: obj({ n: int }),
    new: obj({ n: { type: 'number' } }),
    backward: true,
  },
  {
    name: 'narrowing number to integer',
    rule: 'Old documents may hold fractions — TYPE_NARROWED',
    old: obj({ n: { type: 'number' } }),
    new: obj({ n: int }),
    backward: false,
    code: 'TYPE_NARROWED',
    path: 'n',
  },
  {
    name: 'changing a property type',
    rule: 'string to integer accepts none of the old values — TYPE_CHANGED',
    old: obj({ id: str }),
    new: obj({ id: int }),
    backward: false,
    code: 'TYPE_CHANGED',
    path: 'id',
  },
  {
    name: 'adding a type to a type list',
    rule: 'TYPE_EXTENDED is compatible',
    old: obj({ v: { type: ['string'] } }),
    new: obj({ v: { type: ['string', 'null'] } }),
    backward: true,
  },
  {
    name: 'removing a type from a type list',
    rule: 'TYPE_NARROWED',
    old: obj({ v: { type: ['string', 'null'] } }),
    new: obj({ v: { type: 'string' } }),
    backward: false,
    code: 'TYPE_NARROWED',
    path: 'v',
  },
  {
    name: 'extending an enum',
    rule: 'ENUM_ARRAY_EXTENDED is compatible',
    old: obj({ c: { enum: ['EUR', 'USD'] } }),
    new: obj({ c: { enum: ['EUR', 'USD', 'GBP'] } }),
    backward: true,
  },
  {
    name: 'narrowing an enum',
    rule: 'Old documents may hold the removed value — ENUM_ARRAY_NARROWED',
    old: obj({ c: { enum: ['EUR', 'USD'] } }),
    new: obj({ c: { enum: ['EUR'] } }),
    backward: false,
    code: 'ENUM_ARRAY_NARROWED',
    path: 'c',
  },
  {
    name: 'increasing maxLength',
    rule: 'MAX_LENGTH_INCREASED is compatible',
    old: obj({ s: { type: 'string', maxLength: 5 } }),
    new: obj({ s: { type: 'string', maxLength: 10 } }),
    backward: true,
  },
  {
    name: 'decreasing maxLength',
    rule: 'MAX_LENGTH_DECREASED',
    old: obj({ s: { type: 'string', maxLength: 10 } }),
    new: obj({ s: { type: 'string', maxLength: 5 } }),
    backward: false,
    code: 'MAX_LENGTH_DECREASED',
    path: 's',
  },
  {
    name: 'adding a minimum',
    rule: 'MINIMUM_ADDED',
    old: obj({ n: int }),
    new: obj({ n: { type: 'integer', minimum: 1 } }),
    backward: false,
    code: 'MINIMUM_ADDED',
    path: 'n',
  },
  {
    name: 'decreasing a minimum',
    rule: 'MINIMUM_DECREASED is compatible',
    old: obj({ n: { type: 'integer', minimum: 5 } }),
    new: obj({ n: { type: 'integer', minimum: 1 } }),
    backward: true,
  },
  {
    name: 'adding a pattern',
    rule: 'PATTERN_ADDED',
    old: obj({ s: str }),
    new: obj({ s: { type: 'string', pattern: '^[a-z]+$' } }),
    backward: false,
    code: 'PATTERN_ADDED',
    path: 's',
  },
  {
    name: 'removing a pattern',
    rule: 'PATTERN_REMOVED is compatible',
    old: obj({ s: { type: 'string', pattern: '^[a-z]+$' } }),
    new: obj({ s: str }),
    backward: true,
  },
  {
    name: 'changing a nested property type names the nested path',
    rule: 'TYPE_CHANGED inside a nested object',
    old: obj({ total: obj({ amount: { type: 'number' } }) }),
    new: obj({ total: obj({ amount: str }) }),
    backward: false,
    code: 'TYPE_CHANGED',
    path: 'total.amount',
  },
  {
    name: 'changing the item type of an array',
    rule: 'TYPE_CHANGED inside items',
    old: obj({ tags: { type: 'array', items: str } }),
    new: obj({ tags: { type: 'array', items: int } }),
    backward: false,
    code: 'TYPE_CHANGED',
    path: 'tags[]',
  },
  {
    name: 'extending a oneOf',
    rule: 'SUM_TYPE_EXTENDED is compatible',
    old: obj({ v: { oneOf: [str, int] } }),
    new: obj({ v: { oneOf: [str, int, { type: 'boolean' }] } }),
    backward: true,
  },
  {
    name: 'narrowing a oneOf',
    rule: 'SUM_TYPE_NARROWED',
    old: obj({ v: { oneOf: [str, int] } }),
    new: obj({ v: { oneOf: [str] } }),
    backward: false,
    code: 'SUM_TYPE_NARROWED',
    path: 'v.oneOf[1]',
  },
  {
    name: 'following local $refs',
    rule: 'Definitions are compared where they are used (TYPE_CHANGED through #/definitions)',
    old: { type: 'object', properties: { m: { $ref: '#/definitions/M' } }, definitions: { M: obj({ u: int }) } },
    new: { type: 'object', properties: { m: { $ref: '#/definitions/M' } }, definitions: { M: obj({ u: str }) } },
    backward: false,
    code: 'TYPE_CHANGED',
    path: 'm.u',
  },
];
