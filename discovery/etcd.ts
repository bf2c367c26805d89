import { DiscoveryUnavailableError, describeCause } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { parseInstance, sortInstances, type Registration, type ServiceInstance, type ServiceKind, type ServiceRegistry } from './registry.ts';

/**
 * The etcd backend, over etcd's v3 HTTP/JSON gateway (every etcd >= 3.4 serves
 * it on the client port): plain fetch, no gRPC stack to build or load. Each
 * registration owns a lease of `ttlS` seconds kept alive at a third of its
 * TTL; a lease that expired anyway (a long pause, an etcd restart) is replaced
 * and the key written again, so an instance that is alive is listed again.
 */

export interface EtcdOptions {
  endpoints: string[];
  prefix: string;
  ttlS: number;
  logger: Logger;
  requestTimeoutMs?: number;
}

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
const unb64 = (text: string): string => Buffer.from(text, 'base64').toString('utf8');

/** The smallest key greater than every key starting with `prefix` (etcd's range_end for a prefix scan). */
export function prefixEnd(prefix: string): string {
  const bytes = Buffer.from(prefix, 'utf8');
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 0xff) {
      const end = Buffer.from(bytes.subarray(0, i + 1));
      end[i] = bytes[i]! + 1;
      return end.toString('latin1');
    }
  }
  return '\0';
}

interface KeyValue {
  key?: string;
  value?: string;
}

export class EtcdClient {
  readonly endpoints: string[];
  readonly #timeoutMs: number;
  #preferred = 0;

  constructor(endpoints: string[], timeoutMs = 3000) {
    if (endpoints.length === 0) throw new DiscoveryUnavailableError('no etcd endpoints configured');
    this.endpoints = endpoints.map((e) => e.replace(/\/$/, ''));
    this.#timeoutMs = timeoutMs;
  }

  /** POSTs to the first endpoint that answers; an error answer from etcd is not retried elsewhere. */
  async call<T>(path: string, body: unknown): Promise<T> {
    let lastError: unknown;
    for (let n = 0; n < this.endpoints.length; n++) {
      const index = (this.#preferred + n) % this.endpoints.length;
      const endpoint = this.endpoints[index]!;
      let response: Response;
      try {
        response = await fetch(`${endpoint}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(this.#timeoutMs),
        });
      } catch (error) {
        lastError = error;
        continue;
      }
      this.#preferred = index;
      const text = await response.text();
      if (!response.ok) throw new DiscoveryUnavailableError(`etcd ${endpoint}${path} answered ${response.status}: ${text.slice(0, 500)}`);
      return JSON.parse(text) as T;
    }
    throw new DiscoveryUnavailableError(`etcd is unreachable at ${this.endpoints.join(', ')}: ${describeCause(lastError)}`, lastError);
  }

  async grantLease(ttlS: number): Promise<string> {
    const reply = await this.call<{ ID?: string; error?: string }>('/v3/lease/grant', { TTL: ttlS });
    if (!reply.ID) throw new DiscoveryUnavailableError(`etcd granted no lease: ${reply.error ?? JSON.stringify(reply)}`);
    return reply.ID;
  }

  /** Renews a lease; false when etcd no longer knows it (expired or revoked). */
  async keepAlive(lease: string): Promise<boolean> {
    const reply = await this.call<{ result?: { TTL?: string } }>('/v3/lease/keepalive', { ID: lease });
    return Number(reply.result?.TTL ?? 0) > 0;
  }

  async revoke(lease: string): Promise<void> {
    await this.call('/v3/lease/revoke', { ID: lease });
  }

  async put(key: string, value: string, lease?: string): Promise<void> {
    await this.call('/v3/kv/put', { key: b64(key), value: b64(value), ...(lease === undefined ? {} : { lease }) });
  }

  async range(prefix: string): Promise<{ key: string; value: string }[]> {
    const reply = await this.call<{ kvs?: KeyValue[] }>('/v3/kv/range', { key: b64(prefix), range_end: Buffer.from(prefixEnd(prefix), 'latin1').toString('base64') });
    return (reply.kvs ?? []).map((kv) => ({ key: unb64(kv.key ?? ''), value: unb64(kv.value ?? '') }));
  }
}

class EtcdRegistration implements Registration {
  readonly instance: ServiceInstance;
  readonly #client: EtcdClient;
  readonly #key: string;
  readonly #ttlS: number;
  readonly #log: Logger;
  #lease: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #beat: Promise<void> = Promise.resolve();

  constructor(client: EtcdClient, key: string, instance: ServiceInstance, ttlS: number, log: Logger) {
    this.#client = client;
    this.#key = key;
    this.instance = instance;
    this.#ttlS = ttlS;
    this.#log = log;
  }

  async start(): Promise<void> {
    await this.#write();
    // A third of the TTL leaves two more attempts before a transient etcd hiccup lets the lease lapse.
    this.#timer = setInterval(
      () => {
        this.#beat = this.#renew();
      },
      Math.max(500, (this.#ttlS * 1000) / 3),
    );
    this.#timer.unref();
  }

  async #write(): Promise<void> {
    this.#lease = await this.#client.grantLease(this.#ttlS);
    await this.#client.put(this.#key, JSON.stringify(this.instance), this.#lease);
  }

  async #renew(): Promise<void> {
    if (this.#stopped || this.#lease === undefined) return;
    try {
      if (await this.#client.keepAlive(this.#lease)) return;
      this.#log.warn({ key: this.#key }, 'discovery lease had expired; registering again');
      await this.#write();
    } catch (error) {
      // The next beat tries again; the lease outlives two missed beats.
      this.#log.warn({ err: error, key: this.#key }, 'discovery keep-alive failed');
    }
  }

  async deregister(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#beat;
    // Revoking the lease deletes the key with it.
    if (this.#lease !== undefined) await this.#client.revoke(this.#lease);
  }
}

export class EtcdServiceRegistry implements ServiceRegistry {
  readonly description: string;
  readonly #client: EtcdClient;
  readonly #options: EtcdOptions;
  readonly #registrations = new Set<EtcdRegistration>();

  constructor(options: EtcdOptions) {
    this.#options = options;
    this.#client = new EtcdClient(options.endpoints, options.requestTimeoutMs);
    this.description = `etcd ${options.endpoints.join(',')} ${options.prefix}`;
  }

  #key(instance: Pick<ServiceInstance, 'kind' | 'name' | 'id'>): string {
    return `${this.#options.prefix}${instance.kind}/${instance.name}/${instance.id}`;
  }

  async register(instance: ServiceInstance): Promise<Registration> {
    const registration = new EtcdRegistration(this.#client, this.#key(instance), instance, this.#options.ttlS, this.#options.logger);
    await registration.start();
    this.#registrations.add(registration);
    return {
      instance,
      deregister: async () => {
        this.#registrations.delete(registration);
        await registration.deregister();
      },
    };
  }

  async list(kind?: ServiceKind): Promise<ServiceInstance[]> {
    const entries = await this.#client.range(kind === undefined ? this.#options.prefix : `${this.#options.prefix}${kind}/`);
    const instances: ServiceInstance[] = [];
    for (const { key, value } of entries) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(value);
      } catch {
        parsed = undefined;
      }
      const instance = parseInstance(parsed);
      if (instance) instances.push(instance);
      else this.#options.logger.warn({ key }, 'ignoring a discovery entry that is not a Sluice instance');
    }
    return sortInstances(instances);
  }

  async close(): Promise<void> {
    const pending = [...this.#registrations];
    this.#registrations.clear();
    await Promise.all(pending.map((r) => r.deregister()));
  }
}
