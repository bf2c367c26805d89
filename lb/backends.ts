import type { ServiceInstance } from '../discovery/registry.ts';

/** The ingress replicas a load balancer fronts, from discovery, in a stable order. */

export interface Backend {
  /** A name HAProxy and NGINX accept: letters, digits, `_`, `.`, `-`. */
  name: string;
  address: string;
  port: number;
}

export function backendsFrom(instances: ServiceInstance[]): Backend[] {
  const seen = new Set<string>();
  const backends: Backend[] = [];
  for (const i of instances) {
    if (i.kind !== 'ingress' || i.port <= 0) continue;
    const endpoint = `${i.address}:${i.port}`;
    // Two registrations of one address (a restart before the old lease expired) are one server.
    if (seen.has(endpoint)) continue;
    seen.add(endpoint);
    backends.push({ name: i.id.replace(/[^A-Za-z0-9_.-]/g, '_'), address: i.address, port: i.port });
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
