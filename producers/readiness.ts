import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authorize } from '../access/permissions.ts';
import { describeCause } from '../core/errors.ts';
import type { RegistryClient } from '../core/registry-client.ts';
import type { KafkaConnection } from './ingress-kafka.ts';
import type { RouteBinding } from './routes.ts';
import { withDeadline } from '../core/deadline.ts';

/**
 * Readiness: whether this ingress can take events now. Each check is cached for
 * a few seconds, so a load balancer polling /readyz does not turn into a stream
 * of broker and registry requests, and each is bounded by a timeout, so a hung
 * dependency makes /readyz answer "not ready" instead of hanging too.
 */

export interface CheckResult {
  ok: boolean;
  error?: string;
  checkedAt: string;
}

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, CheckResult>;
}

export type Check = () => Promise<void>;

interface CachedCheck {
  readonly run: Check;
  result: CheckResult | undefined;
  checkedAtMs: number;
  pending: Promise<CheckResult> | undefined;
}

export class Readiness {
  readonly #checks = new Map<string, CachedCheck>();
  readonly #cacheMs: number;
  readonly #timeoutMs: number;

  constructor(options: { cacheMs: number; timeoutMs: number }) {
    this.#cacheMs = options.cacheMs;
    this.#timeoutMs = options.timeoutMs;
  }

  add(name: string, run: Check): void {
    this.#checks.set(name, { run, result: undefined, checkedAtMs: 0, pending: undefined });
  }

  async report(): Promise<ReadinessReport> {
    const entries = await Promise.all([...this.#checks].map(async ([name, check]) => [name, await this.#evaluate(check)] as const));
    return { ready: entries.every(([, r]) => r.ok), checks: Object.fromEntries(entries) };
  }

  #evaluate(check: CachedCheck): Promise<CheckResult> {
    const now = Date.now();
    if (check.result && now - check.checkedAtMs < this.#cacheMs) return Promise.resolve(check.result);
    // Concurrent probes share one check instead of each starting their own.
    check.pending ??= this.#run(check).finally(() => {
      check.pending = undefined;
    });
    return check.pending;
  }

  async #run(check: CachedCheck): Promise<CheckResult> {
    let result: CheckResult;
    try {
      await withDeadline(check.run(), this.#timeoutMs, () => {
        throw new Error(`no answer within ${this.#timeoutMs} ms`);
      });
      result = { ok: true, checkedAt: new Date().toISOString() };
    } catch (error) {
      result = { ok: false, error: describeCause(error), checkedAt: new Date().toISOString() };
    }
    check.result = result;
    check.checkedAtMs = Date.now();
    return result;
  }
}

/** The ingress's checks: the broker, the registry (each route's schema id), and that every route has its schema. */
export function ingressReadiness(options: { connection: Pick<KafkaConnection, 'ready'>; registry: RegistryClient; bindings: RouteBinding[]; routes: number; produceTimeoutMs: number }): Readiness {
  const { connection, registry, bindings } = options;
  const readiness = new Readiness({ cacheMs: 3000, timeoutMs: Math.min(2000, options.produceTimeoutMs) });
  readiness.add('broker', () => connection.ready());
  readiness.add('registry', async () => {
    for (const b of bindings) await registry.request('GET', `/schemas/ids/${b.schemaId}`);
  });
  readiness.add('schemas', async () => {
    if (bindings.length !== options.routes) throw new Error('not every route has a registered schema');
  });
  return readiness;
}

/**
 * GET /healthz and GET /readyz. Both are public (load balancers call them
 * without credentials) and never rate limited (the route table's `probe`).
 * The public answer of /readyz says ready or not and nothing else: the causes
 * of a failed check (broker addresses, registry errors) are shown only to a
 * signed-in principal allowed `metrics`, or to anyone when access is open.
 */
export function registerProbes(app: FastifyInstance, readiness: Pick<Readiness, 'report'>, access: { open: boolean }): void {
  const detailed = (request: FastifyRequest) => authorize(request.principal, [{ kind: 'metrics' }], access.open).allowed;
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (request, reply) => {
    const report = await readiness.report();
    const details = detailed(request);
    if (report.ready) return details ? { status: 'ready', checks: report.checks } : { status: 'ready' };
    if (!details) return reply.code(503).send({ error: 'SLUICE_NOT_READY', message: 'not ready', status: 'not ready' });
    const failed = Object.entries(report.checks).filter(([, c]) => !c.ok);
    return reply.code(503).send({
      error: 'SLUICE_NOT_READY',
      message: `not ready: ${failed.map(([name, c]) => `${name} (${c.error ?? 'failed'})`).join('; ')}`,
      status: 'not ready',
      checks: report.checks,
    });
  });
}
