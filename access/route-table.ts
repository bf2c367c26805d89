import type { Need } from './permissions.ts';

/**
 * The route table: which permission each route of each HTTP service needs.
 * A route missing here cannot be registered (see plugin.ts), so adding a route
 * means deciding who may call it. Keys are `METHOD url` as Fastify declares
 * them; HEAD follows GET.
 */

export interface RequestParts {
  params: Record<string, string | undefined>;
  query: Record<string, string | undefined>;
}

export interface RouteRule {
  needs(request: RequestParts): Need[];
  /** Writes get one audit log line each (who, what, the outcome). */
  audit?: boolean;
  /** The answer is a subject list, cut down to the subjects the principal may read. */
  filterSubjects?: boolean;
  /**
   * A health probe: never rate limited. Behind a load balancer every client and
   * the balancer's own checks may share one address, so a flood of anonymous
   * requests must not make the probes fail and take every replica out.
   */
  probe?: boolean;
}

export type RouteTable = Readonly<Record<string, RouteRule>>;

const always =
  (...needs: Need[]): RouteRule['needs'] =>
  () =>
    needs;
const PUBLIC: RouteRule = { needs: always({ kind: 'public' }) };
const SIGNED_IN: RouteRule = { needs: always({ kind: 'authenticated' }) };
const PROBE: RouteRule = { needs: always({ kind: 'public' }), probe: true };
const subject = (r: RequestParts): string => r.params.subject ?? '';

/** The ingress: health for load balancers, metrics for the scraper, docs for anyone signed in, and one produce rule per topology route. */
export function ingressRouteTable(routePaths: readonly string[]): RouteTable {
  const table: Record<string, RouteRule> = {
    'GET /healthz': PROBE,
    'GET /readyz': PROBE,
    'GET /metrics': { needs: always({ kind: 'metrics' }) },
    'GET /docs': SIGNED_IN,
    'GET /docs/openapi.json': SIGNED_IN,
    'GET /docs/asyncapi.json': SIGNED_IN,
    // The HTTP read path: reading a topic, as `sluice tail` and the console do.
    'GET /v1/topics/:topic/records': { needs: (r) => [{ kind: 'read', topic: r.params.topic ?? '' }] },
  };
  for (const path of routePaths) table[`POST ${path}`] = { needs: always({ kind: 'produce', route: path }) };
  return table;
}

const READ_ANY: RouteRule = { needs: always({ kind: 'registry:read' }) };
const READ_SUBJECT: RouteRule = { needs: (r) => [{ kind: 'registry:read', subject: subject(r) }] };
const WRITE_SUBJECT: RouteRule = { needs: (r) => [{ kind: 'registry:write', subject: subject(r) }], audit: true };
const ADMIN: RouteRule = { needs: always({ kind: 'registry:admin' }), audit: true };

/**
 * The schema registry, in Karapace's terms: reads and writes per subject; a
 * subject's own compatibility is part of writing it (Confluent's clients set it
 * on first registration); global config, mode and deletes are admin.
 */
export const REGISTRY_ROUTES: RouteTable = {
  'GET /': SIGNED_IN,
  'GET /schemas/types': SIGNED_IN,
  'GET /subjects': { needs: always({ kind: 'registry:read' }), filterSubjects: true },
  'GET /subjects/:subject/versions': READ_SUBJECT,
  'GET /subjects/:subject/versions/:version': READ_SUBJECT,
  'GET /subjects/:subject/versions/:version/schema': READ_SUBJECT,
  'POST /subjects/:subject/versions': WRITE_SUBJECT,
  // Looking a schema up and testing compatibility change nothing: reads.
  'POST /subjects/:subject': READ_SUBJECT,
  'DELETE /subjects/:subject': ADMIN,
  'DELETE /subjects/:subject/versions/:version': ADMIN,
  // Ids span subjects: any registry:read passes here; registry/routes.ts then serves an id only through a subject the caller may read.
  'GET /schemas/ids/:id': READ_ANY,
  'GET /schemas/ids/:id/schema': READ_ANY,
  'GET /schemas/ids/:id/versions': READ_ANY,
  'GET /schemas/ids/:id/subjects': { needs: always({ kind: 'registry:read' }), filterSubjects: true },
  'POST /compatibility/subjects/:subject/versions/:version': READ_SUBJECT,
  'POST /compatibility/subjects/:subject/versions': READ_SUBJECT,
  'GET /config': READ_ANY,
  'PUT /config': ADMIN,
  'DELETE /config': ADMIN,
  'GET /config/:subject': READ_SUBJECT,
  'PUT /config/:subject': WRITE_SUBJECT,
  'DELETE /config/:subject': WRITE_SUBJECT,
  'GET /mode': READ_ANY,
  'PUT /mode': ADMIN,
  'GET /mode/:subject': READ_SUBJECT,
  'PUT /mode/:subject': ADMIN,
  'DELETE /mode/:subject': ADMIN,
  'GET /subjects/:subject/versions/:version/referencedby': READ_SUBJECT,
  'GET /subjects/:subject/metadata': READ_SUBJECT,
  // Lists span subjects: registry/routes/contracts.ts shows only those the caller may read.
  'GET /schemas': READ_ANY,
  'GET /contexts': SIGNED_IN,
  'GET /metrics': { needs: always({ kind: 'metrics' }) },
};

const VIEWER: Need = { kind: 'console', role: 'viewer' };
const OPERATOR: Need = { kind: 'console', role: 'operator' };

/**
 * The console: its page and login are public; every API needs a viewer, topic
 * data also read on the topic; actions that change things need an operator
 * (and, from a session, its CSRF token: console-session.ts).
 */
export const CONSOLE_ROUTES: RouteTable = {
  'GET /': PUBLIC,
  'GET /app.js': PUBLIC,
  'GET /diff.js': PUBLIC,
  'GET /style.css': PUBLIC,
  'GET /api/session': PUBLIC,
  'GET /metrics': { needs: always({ kind: 'metrics' }) },
  'POST /api/login': PUBLIC,
  'POST /api/logout': SIGNED_IN,
  'GET /api/topics': { needs: always(VIEWER) },
  'GET /api/topics/:name': { needs: (r) => [VIEWER, { kind: 'read', topic: r.params.name ?? '' }] },
  'GET /api/groups': { needs: always(VIEWER) },
  'GET /api/groups/:id': { needs: always(VIEWER) },
  'GET /api/schemas': { needs: always(VIEWER) },
  'GET /api/schemas/:subject/versions/:version': { needs: (r) => [VIEWER, { kind: 'registry:read', subject: subject(r) }] },
  'GET /api/tail': { needs: (r) => (r.query.topic === undefined ? [VIEWER] : [VIEWER, { kind: 'read', topic: r.query.topic }]) },
  'GET /api/dlq/:topic': { needs: (r) => [VIEWER, { kind: 'read', topic: r.params.topic ?? '' }] },
  // Re-produces dead letters to their original topics (once each: the replay ledger).
  'POST /api/dlq/:topic/replay': { needs: (r) => [OPERATOR, { kind: 'read', topic: r.params.topic ?? '' }], audit: true },
};

/** The rule for a request's route; HEAD is answered as GET. */
export function ruleFor(table: RouteTable, method: string, url: string): RouteRule | undefined {
  return table[`${method === 'HEAD' ? 'GET' : method} ${url}`];
}
