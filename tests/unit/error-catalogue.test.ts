import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { BadRequestError, ERROR_CODES, ERRORS, errorSpec, RegistryError, SluiceError } from '../../core/errors.ts';
import errorMapper, { type ErrorMapperOptions } from '../../core/http-errors.ts';
import { ingressErrors } from '../../producers/ingress-errors.ts';
import { confluentErrors } from '../../registry/routes/errors.ts';

describe('the error catalogue', () => {
  it('declares an HTTP error status and retryability for every code', () => {
    expect(ERROR_CODES.length).toBe(Object.keys(ERRORS).length);
    for (const code of ERROR_CODES) {
      expect(errorSpec(code).status, code).toBeGreaterThanOrEqual(400);
      expect(errorSpec(code).status, code).toBeLessThan(600);
      expect(typeof errorSpec(code).retryable, code).toBe('boolean');
    }
  });

  it('gives each error the status and retryability of its code', () => {
    expect(new BadRequestError('no')).toMatchObject({ code: 'SLUICE_BAD_REQUEST', statusCode: 400, retryable: false });
    expect(new SluiceError('SLUICE_OVERLOADED', 'full')).toMatchObject({ statusCode: 503, retryable: true });
    expect(RegistryError.subjectNotFound('s')).toMatchObject({ code: 'SLUICE_REGISTRY_40401', statusCode: 404, retryable: false });
    expect(RegistryError.storeError('down')).toMatchObject({ code: 'SLUICE_REGISTRY_50001', statusCode: 500, retryable: true });
    expect(new RegistryError(409, 'incompatible')).toMatchObject({ statusCode: 409 });
  });
});

async function answer(options: ErrorMapperOptions, thrown: unknown): Promise<{ status: number; body: unknown }> {
  const app = Fastify();
  await app.register(errorMapper, options);
  app.get('/x', async () => {
    throw thrown;
  });
  const response = await app.inject({ method: 'GET', url: '/x' });
  const missing = await app.inject({ method: 'GET', url: '/nowhere' });
  await app.close();
  return { status: response.statusCode, body: { answer: response.json(), missing: [missing.statusCode, missing.json()] } };
}

describe('the one error mapper', () => {
  const ingress = ingressErrors({ bodyLimit: 1024, produceTimeoutMs: 5000, rejected: { inc: () => undefined }, routes: ['POST /orders'] });

  it("writes a programming error as each service's wire format, without echoing it on the ingress", async () => {
    expect(await answer(ingress, new TypeError('boom'))).toEqual({
      status: 500,
      body: {
        answer: { error: 'SLUICE_INTERNAL', message: 'internal error; see the ingress log for this correlation id' },
        missing: [404, { error: 'SLUICE_NOT_FOUND', message: 'no route for GET /nowhere (routes: POST /orders)' }],
      },
    });
    expect(await answer(confluentErrors, new TypeError('boom'))).toEqual({
      status: 500,
      body: { answer: { error_code: 500, message: 'Internal Server Error: boom' }, missing: [404, { error_code: 404, message: 'HTTP 404 Not Found: no route GET /nowhere' }] },
    });
  });

  it("answers a coded error with the catalogue's status: Confluent codes on the registry, Sluice codes elsewhere", async () => {
    expect((await answer(confluentErrors, RegistryError.invalidSchema('bad'))).status).toBe(422);
    expect(((await answer(confluentErrors, RegistryError.invalidSchema('bad'))).body as { answer: unknown }).answer).toEqual({ error_code: 42201, message: 'bad' });
    expect(((await answer(confluentErrors, new BadRequestError('no'))).body as { answer: unknown }).answer).toEqual({ error_code: 400, message: 'no' });
    expect(await answer(ingress, new BadRequestError('no'))).toMatchObject({ status: 400, body: { answer: { error: 'SLUICE_BAD_REQUEST', message: 'no' } } });
  });
});
