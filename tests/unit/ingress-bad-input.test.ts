import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../../core/config.ts';
import { createLogger } from '../../core/logger.ts';
import { loadTopology } from '../../topology/load.ts';
import { ingressApp } from '../support/ingress-app.ts';

/** The four inputs issue 12 found answered with a 500 or silently changed: each is now a 400 naming the field. */
const config = loadConfig({ SLUICE_LOG_LEVEL: 'silent' });
const order = '{"orderId":"o-1","customerId":"c-1","items":[{"sku":"KB-01","quantity":2,"unitPrice":49.5}],"amount":99.0,"currency":"EUR","placedAt":"2026-11-25T10:00:00Z"}';

describe('bad input is a 400 naming the field', () => {
  let app: FastifyInstance;
  let sent: Awaited<ReturnType<typeof ingressApp>>['sent'];
  beforeAll(async () => {
    ({ app, sent } = await ingressApp(config, loadTopology(new URL('../../topology/sluice.topology.yaml', import.meta.url).pathname), createLogger(config, 'test')));
  });
  afterAll(async () => app.close());

  const post = async (payload: string | Buffer, type = 'application/json') => {
    sent.length = 0;
    const response = await app.inject({ method: 'POST', url: '/v1/orders', headers: { 'content-type': type }, payload });
    expect(sent).toHaveLength(0);
    return { status: response.statusCode, body: response.json<{ error: string; path?: string; message: string; errors?: { index?: number; path: string }[] }>() };
  };

  it('accepts the README order (the baseline)', async () => {
    const response = await app.inject({ method: 'POST', url: '/v1/orders', headers: { 'content-type': 'application/json' }, payload: order });
    expect(response.statusCode).toBe(200);
  });

  it.each([
    ['an int beyond 2^53', order.replace('"quantity":2', '"quantity":99999999999999999999'), 'items[0].quantity', /expected int, got 99999999999999999999/],
    ['an int beyond 32 bits', order.replace('"quantity":2', '"quantity":2147483648'), 'items[0].quantity', /expected int/],
    ['a double overflowing to Infinity', order.replace('"unitPrice":49.5', '"unitPrice":1e400'), 'items[0].unitPrice', /1e400 is out of range/],
    ['a negative one', order.replace('"amount":99.0', '"amount":-1.5E+999'), 'amount', /-1\.5E\+999 is out of range/],
    ['a long beyond 64 bits', order.replace('"orderId"', '"loyaltyPoints":9223372036854775808,"orderId"'), 'loyaltyPoints', /expected long/],
    ['__proto__', order.replace('"orderId"', '"__proto__":{"admin":true},"orderId"'), '__proto__', /unknown field/],
    ['constructor', order.replace('"orderId"', '"constructor":1,"orderId"'), 'constructor', /unknown field/],
    ['an enum symbol that is an Object.prototype name', order.replace('"EUR"', '"toString"'), 'currency', /expected one of/],
    ['a lone UTF-16 surrogate', order.replace('"o-1"', '"o-\\ud800"'), 'orderId', /lone UTF-16 surrogate/],
  ])('%s', async (_name, body, path, message) => {
    const { status, body: answer } = await post(body);
    expect(status).toBe(400);
    expect(answer.path).toBe(path);
    expect(answer.message).toMatch(message);
  });

  it('invalid UTF-8 in a string', async () => {
    const [before, after] = order.split('o-1');
    const { status, body } = await post(Buffer.concat([Buffer.from(`${before}o-`), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from(after!)]));
    expect(status).toBe(400);
    expect(body).toMatchObject({ error: 'SLUICE_VALIDATION_FAILED', path: 'orderId', message: expect.stringMatching(/orderId: not valid UTF-8/) });
  });

  it('invalid UTF-8 and Infinity in a batch name the event', async () => {
    const bad = await post(`[${order},${order.replace('"amount":99.0', '"amount":1e999')}]`);
    expect(bad.body.errors).toEqual([{ index: 1, path: 'amount', message: expect.any(String) }]);
    const ndjson = await post(`${order}\n${order.replace('"amount":99.0', '"amount":1e999')}\n`, 'application/x-ndjson');
    expect(ndjson.body.errors).toEqual([{ index: 1, path: 'amount', message: expect.any(String) }]);
    const utf8 = await post(Buffer.concat([Buffer.from(`${order}\n${order.slice(0, 20)}`), Buffer.from([0xff]), Buffer.from(order.slice(20))]), 'application/x-ndjson');
    expect(utf8.status).toBe(400);
    expect(utf8.body.errors?.[0]).toMatchObject({ index: 1 });
  });

  it('bytes that are not UTF-8 outside any string are a malformed body', async () => {
    const { status, body } = await post(Buffer.from([0x7b, 0xff, 0x7d]));
    expect(status).toBe(400);
    expect(body).toMatchObject({ error: 'SLUICE_MALFORMED_BODY', message: expect.stringMatching(/not valid UTF-8/) });
  });
});
