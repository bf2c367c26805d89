/**
 * Service discovery as the platform sees it: instances announce themselves
 * under a lease they keep alive, so a crashed instance vanishes by itself once
 * the lease runs out. etcd implements it (discovery/etcd.ts); a Consul backend
 * would implement the same interface with a session or a TTL check.
 */

export type ServiceKind = 'ingress' | 'registry' | 'worker' | 'bridge';

export interface ServiceInstance {
  /** Unique per process and replica, e.g. `ingress-host-1234-0`. */
  id: string;
  kind: ServiceKind;
  /** The service's own name: `ingress`, `registry`, the worker's or bridge's name. */
  name: string;
  address: string;
  /** 0 for services without a listening port (workers, bridges). */
  port: number;
  /** Empty for services without an HTTP endpoint. */
  healthUrl: string;
  version: string;
  pid: number;
  startedAt: string;
}

export interface Registration {
  readonly instance: ServiceInstance;
  /** Removes the instance now instead of when its lease expires. */
  deregister(): Promise<void>;
}

export interface ServiceRegistry {
  /** Describes the backend for logs and `sluice services`, e.g. `etcd http://127.0.0.1:2379`. */
  readonly description: string;
  register(instance: ServiceInstance): Promise<Registration>;
  /** Live instances, optionally of one kind, sorted by kind, name and id. */
  list(kind?: ServiceKind): Promise<ServiceInstance[]>;
  /** Stops keep-alives and deregisters whatever this client registered. */
  close(): Promise<void>;
}

export function sortInstances(instances: ServiceInstance[]): ServiceInstance[] {
  return [...instances].sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
}

const KINDS: ReadonlySet<string> = new Set<ServiceKind>(['ingress', 'registry', 'worker', 'bridge']);

/** Checks a stored registration (written by any Sluice version) before trusting it. */
export function parseInstance(value: unknown): ServiceInstance | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const strings = ['id', 'name', 'address', 'healthUrl', 'version', 'startedAt'] as const;
  if (!strings.every((k) => typeof v[k] === 'string')) return undefined;
  if (typeof v.kind !== 'string' || !KINDS.has(v.kind)) return undefined;
  if (typeof v.port !== 'number' || typeof v.pid !== 'number') return undefined;
  return value as ServiceInstance;
}
