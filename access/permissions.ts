import { SluiceError } from '../core/errors.ts';

/**
 * What a principal may do, and the one check every HTTP route goes through.
 *
 * A grant is a string in the access file:
 *   produce:<route glob>          POST events to ingress routes (`produce:/v1/orders`, `produce:*`)
 *   read:<topic glob>             read records of topics (tail, console topic pages, live tail)
 *   registry:read:<subject glob>  read schemas, versions, config of subjects; test compatibility
 *   registry:write:<subject glob> register schemas under subjects, set their compatibility (implies registry:read on them)
 *   registry:admin                global compatibility config, mode, deletes (implies all registry reads and writes)
 *   console:viewer                sign in to the console and see topics, groups and schemas
 *   console:operator              console actions that change things (implies console:viewer)
 *   metrics                       GET /metrics
 *   *                             everything
 * Globs: `*` matches any run of characters (also `/` and `.`), `?` one character.
 */

export type Need =
  /** Anyone, even without credentials (health checks, the console's login page). */
  | { kind: 'public' }
  /** Any signed-in principal. */
  | { kind: 'authenticated' }
  | { kind: 'produce'; route: string }
  | { kind: 'read'; topic: string }
  /** `subject` undefined: a read that spans subjects (ids, the subject list), allowed with read access to any subject. */
  | { kind: 'registry:read'; subject?: string }
  | { kind: 'registry:write'; subject: string }
  | { kind: 'registry:admin' }
  | { kind: 'console'; role: 'viewer' | 'operator' }
  | { kind: 'metrics' };

export type Grant =
  | { kind: 'all' }
  | { kind: 'produce' | 'read' | 'registry:read' | 'registry:write'; pattern: GlobPattern; glob: string }
  | { kind: 'registry:admin' | 'console:viewer' | 'console:operator' | 'metrics' };

export interface Principal {
  readonly name: string;
  readonly grants: readonly Grant[];
  /** Requests per minute, overriding SLUICE_RATE_LIMIT. */
  readonly rateLimit?: number;
}

/** The grant syntax, also used by the access file's JSON Schema. */
export const GRANT_PATTERN = '^(\\*|metrics|registry:admin|console:(viewer|operator)|(produce|read|registry:read|registry:write):\\S+)$';
const GRANT = new RegExp(GRANT_PATTERN);
const SCOPED = ['registry:read', 'registry:write', 'produce', 'read'] as const;

/** A compiled glob: `test` says whether a whole name matches. */
export interface GlobPattern {
  test(text: string): boolean;
}

/**
 * Glob matching in O(name × glob) time with no backtracking beyond the last `*` (the classic wildcard
 * algorithm). A RegExp of `.*` runs backtracks polynomially: `*-*-*` against a long name of dashes (names come
 * from callers: a reference's subject can be as long as the body) would hold the event loop.
 */
export function compileGlob(glob: string): GlobPattern {
  const chars = [...glob];
  return {
    test(text: string): boolean {
      const name = [...text];
      let g = 0;
      let n = 0;
      let star = -1;
      let resume = 0;
      while (n < name.length) {
        if (g < chars.length && (chars[g] === '?' || (chars[g] !== '*' && chars[g] === name[n]))) {
          g++;
          n++;
        } else if (g < chars.length && chars[g] === '*') {
          star = g++;
          resume = n;
        } else if (star >= 0) {
          g = star + 1;
          n = ++resume;
        } else {
          return false;
        }
      }
      while (g < chars.length && chars[g] === '*') g++;
      return g === chars.length;
    },
  };
}

/** Parses one grant string; throws with the reason when it is not one. */
export function parseGrant(text: string): Grant {
  if (!GRANT.test(text)) {
    throw new SluiceError(
      'SLUICE_PERMISSION_INVALID',
      `"${text}" is not a permission (expected produce:<route>, read:<topic>, registry:read|write:<subject>, registry:admin, console:viewer|operator, metrics or *)`,
    );
  }
  if (text === '*') return { kind: 'all' };
  if (text === 'metrics' || text === 'registry:admin' || text === 'console:viewer' || text === 'console:operator') return { kind: text };
  const kind = SCOPED.find((k) => text.startsWith(`${k}:`))!;
  const glob = text.slice(kind.length + 1);
  return { kind, glob, pattern: compileGlob(glob) };
}

function satisfies(grant: Grant, need: Need): boolean {
  if (grant.kind === 'all') return true;
  switch (need.kind) {
    case 'public':
    case 'authenticated':
      return true;
    case 'produce':
      return grant.kind === 'produce' && grant.pattern.test(need.route);
    case 'read':
      return grant.kind === 'read' && grant.pattern.test(need.topic);
    case 'registry:read':
      if (grant.kind === 'registry:admin') return true;
      if (grant.kind !== 'registry:read' && grant.kind !== 'registry:write') return false;
      return need.subject === undefined || grant.pattern.test(need.subject);
    case 'registry:write':
      return grant.kind === 'registry:admin' || (grant.kind === 'registry:write' && grant.pattern.test(need.subject));
    case 'registry:admin':
      return grant.kind === 'registry:admin';
    case 'console':
      return grant.kind === 'console:operator' || (need.role === 'viewer' && grant.kind === 'console:viewer');
    case 'metrics':
      return grant.kind === 'metrics';
  }
}

export type Decision = { allowed: true } | { allowed: false; status: 401 | 403; reason: string };

export function describeNeed(need: Need): string {
  switch (need.kind) {
    case 'public':
      return 'nothing';
    case 'authenticated':
      return 'credentials';
    case 'produce':
      return `produce:${need.route}`;
    case 'read':
      return `read:${need.topic}`;
    case 'registry:read':
      return need.subject === undefined ? 'registry:read on some subject' : `registry:read:${need.subject}`;
    case 'registry:write':
      return `registry:write:${need.subject}`;
    case 'console':
      return `console:${need.role}`;
    default:
      return need.kind;
  }
}

/**
 * THE permission check: may `principal` (undefined: no credentials were given)
 * do something that needs every one of `needs`? `open` is the posture without
 * an access file, where everyone may do everything.
 */
export function authorize(principal: Principal | undefined, needs: readonly Need[], open = false): Decision {
  if (open || needs.every((n) => n.kind === 'public')) return { allowed: true };
  if (!principal) return { allowed: false, status: 401, reason: 'credentials required (Authorization: Bearer <key>, or Basic)' };
  for (const need of needs) {
    if (need.kind === 'public' || need.kind === 'authenticated') continue;
    if (!principal.grants.some((g) => satisfies(g, need))) {
      return { allowed: false, status: 403, reason: `principal "${principal.name}" lacks ${describeNeed(need)}` };
    }
  }
  return { allowed: true };
}

/** Whether a principal may read `subject` (filters subject lists down to what it may see). */
export function canReadSubject(principal: Principal | undefined, subject: string, open = false): boolean {
  return authorize(principal, [{ kind: 'registry:read', subject }], open).allowed;
}

/**
 * Why `principal` may not write records to `topic` of the topology, or
 * undefined when it may. Writing is granted per ingress route (`produce:`), so
 * a principal may write to a topic when it may produce to a route that writes
 * there; a topic no route writes to (a worker's output) is `*`'s alone.
 */
export function cannotProduceTo(principal: Principal | undefined, routes: readonly { path: string; topic: string }[], topic: string, open = false): string | undefined {
  if (open) return undefined;
  if (!principal) return 'credentials required';
  if (principal.grants.some((g) => g.kind === 'all')) return undefined;
  const paths = routes.filter((r) => r.topic === topic).map((r) => r.path);
  if (paths.some((route) => authorize(principal, [{ kind: 'produce', route }]).allowed)) return undefined;
  return paths.length === 0 ? `principal "${principal.name}" lacks * (no route writes to ${topic})` : `principal "${principal.name}" lacks ${paths.map((p) => `produce:${p}`).join(' or ')}`;
}
