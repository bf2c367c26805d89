import { isIP } from 'node:net';
import type { ServiceInstance } from '../discovery/registry.ts';

/** The ingress replicas a load balancer fronts, from discovery, in a stable order. */

export interface Backend {
  /** A name HAProxy and NGINX accept: letters, digits, `_`, `.`, `-`. */
  name: string;
  address: string;
  port: number;
}

/** One DNS label: letters, digits and inner hyphens, at most 63 characters. */
const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const HOSTNAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`);
const MAX_HOSTNAME = 253;
const MAX_NAME = 100;

/**
 * Why an address and port from discovery cannot go into a load balancer's
 * configuration, or undefined when they can. Whoever can write to etcd would
 * otherwise write HAProxy's configuration (a newline and a `bind` or `server`
 * line in an address): only an IP literal or a DNS hostname, and a port from
 * 1 to 65535, are accepted.
 */
export function endpointProblem(address: unknown, port: unknown): string | undefined {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return `port ${JSON.stringify(port)} is not a whole number from 1 to 65535`;
  if (typeof address !== 'string' || address.length === 0 || address.length > MAX_HOSTNAME) return 'address is not an IP address or a hostname of at most 253 characters';
  if (isIP(address) !== 0 || HOSTNAME.test(address)) return undefined;
  return 'address is not an IP address or a DNS hostname';
}

/** Told of each instance skipped, with its (cut) id and why. */
export type SkippedBackend = (instance: string, problem: string) => void;

/** Warns once per skipped instance (a poll every second would repeat it). */
export function warnSkipped(log: { warn(object: object, message: string): void }): SkippedBackend {
  const warned = new Set<string>();
  return (instance, problem) => {
    if (warned.has(instance)) return;
    warned.add(instance);
    log.warn({ instance }, `ingress instance ${JSON.stringify(instance)} in discovery skipped: ${problem}`);
  };
}

/**
 * The ingress instances of `instances` as servers. An entry whose address or
 * port is not safe to write into a configuration is skipped and reported to
 * `skipped` (see warnSkipped); names keep only `[A-Za-z0-9_.-]` (bounded, unique).
 */
export function backendsFrom(instances: ServiceInstance[], skipped?: SkippedBackend): Backend[] {
  const seen = new Set<string>();
  const names = new Set<string>();
  const backends: Backend[] = [];
  for (const i of instances) {
    if (i.kind !== 'ingress' || i.port === 0) continue;
    const problem = endpointProblem(i.address, i.port);
    if (problem !== undefined) {
      // Cut, and quoted by the warning: the id came from the same untrusted entry.
      skipped?.(String(i.id).slice(0, MAX_NAME), problem);
      continue;
    }
    const endpoint = `${i.address.toLowerCase()}:${i.port}`;
    // Two registrations of one address (a restart before the old lease expired) are one server.
    if (seen.has(endpoint)) continue;
    seen.add(endpoint);
    const base =
      String(i.id)
        .replace(/[^A-Za-z0-9_.-]/g, '_')
        .slice(0, MAX_NAME) || 'ingress';
    let name = base;
    for (let n = 2; names.has(name); n++) name = `${base}-${n}`;
    names.add(name);
    backends.push({ name, address: i.address, port: i.port });
  }
  return backends.sort((a, b) => a.address.localeCompare(b.address) || a.port - b.port);
}

/** Equal for the same set of servers: the controller reloads only when this changes. */
export function backendsKey(backends: Backend[]): string {
  return backends.map((b) => `${b.name}@${b.address}:${b.port}`).join(',');
}

export function formatEndpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
