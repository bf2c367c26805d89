import { describe, expect, it } from 'vitest';
import { registerSchema, testCompatibility, type Plan } from '../../registry/commands.ts';
import { parseSchemaRequest, prepareSchemaRequest } from '../../registry/schemas.ts';
import { RegistryState, type LogRecord } from '../../registry/state.ts';

/**
 * A long schema text (up to the 1 MiB body limit) is read in steps, a turn of the event loop each, before the
 * synchronous plan that then finds every step done: the registry shares its event loop with the ingress. The
 * answers are those the plan gives on its own.
 */

/** How many times the event loop went round while `work` ran (one setImmediate a round). */
async function roundsDuring(work: () => Promise<unknown>): Promise<number> {
  let rounds = 0;
  let running = true;
  const round = (): void => {
    if (!running) return;
    rounds++;
    setImmediate(round);
  };
  setImmediate(round);
  await work();
  running = false;
  return rounds;
}

function applied(state: RegistryState, plan: Plan<unknown>): void {
  for (const record of plan.records as LogRecord[]) expect(state.apply(record)).toEqual({ accepted: true });
}

const avroRecord = (fields: number, doc = ''): string =>
  JSON.stringify({ type: 'record', name: 'R', fields: Array.from({ length: fields }, (_, i) => ({ name: `f${i}`, type: 'string', ...(doc ? { doc } : {}) })) });

describe('a long schema text', () => {
  it('is read in steps with the event loop going round between them; a short one in none', async () => {
    const state = new RegistryState();
    const long = { schemaType: 'PROTOBUF', schema: `${'\n'.repeat(200_000)}message A { optional int32 a = 1; }` };
    expect(await roundsDuring(() => prepareSchemaRequest(state, long, undefined, { subject: 's' }))).toBeGreaterThanOrEqual(5);
    expect(await roundsDuring(() => prepareSchemaRequest(state, { schemaType: 'PROTOBUF', schema: 'message A { optional int32 a = 1; }' }))).toBe(0);
    applied(state, registerSchema(state, 's', long));
    expect(state.latest('s')).toMatchObject({ version: 1, id: 1, schema: long.schema, schemaType: 'PROTOBUF' });
  });

  it('is registered, compared and found as the plan alone does: compact JSON stored, the same id for the same schema', async () => {
    const text = avroRecord(3_000, 'x'.repeat(100));
    const spaced = { schema: JSON.stringify(JSON.parse(text), null, 2) };
    const state = new RegistryState();
    await prepareSchemaRequest(state, spaced, undefined, { subject: 's' });
    applied(state, registerSchema(state, 's', spaced));
    expect(state.latest('s')).toMatchObject({ id: 1, schema: text });
    await prepareSchemaRequest(state, { schema: text }, undefined, { subject: 's' });
    expect(registerSchema(state, 's', { schema: text })).toEqual({ records: [], result: { id: 1 } });
    expect(testCompatibility(state, 's', 'latest', { schema: avroRecord(2_999, 'x'.repeat(100)) }, true)).toEqual({ is_compatible: true, messages: [] });
  });

  it('is refused with the same 42201, whether its steps ran first or not', async () => {
    const refusal = expect.objectContaining({ statusCode: 422, errorCode: 42201, message: 'Invalid AVRO schema: "schema" holds more than 4000 arrays/objects' });
    const state = new RegistryState();
    expect(() => parseSchemaRequest(state, { schema: avroRecord(5_000) })).toThrow(refusal);
    const other = { schema: avroRecord(5_001) };
    await prepareSchemaRequest(state, other, undefined, { subject: 's' });
    expect(() => parseSchemaRequest(state, other)).toThrow(refusal);
    expect(() => parseSchemaRequest(state, other)).toThrow(refusal);
  });
});
