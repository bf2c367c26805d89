import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { accessControl } from '../access/control.ts';
import { API_CHALLENGE } from '../access/denials.ts';
import { checkExposure, scheme, serverFactory } from '../access/http.ts';
import { authorize } from '../access/permissions.ts';
import type { SluiceConfig } from '../core/config.ts';
import type { Logger } from '../core/logger.ts';

/**
 * GET /metrics for worker processes. Several `sluice worker` processes on one
 * host would all want the configured port: the first gets it, the others fall
 * back to a free port and log it, rather than refusing to start a worker over
 * its metrics.
 *
 * Guarded as the HTTP services are (access/): a non-loopback address needs an
 * access file or --insecure, and with an access file a scrape needs a
 * principal allowed `metrics`; TLS and connection limits come from the same
 * server factory.
 */

export interface MetricsServer {
  readonly url: string;
  close(): Promise<void>;
}

export type MetricsServerConfig = Pick<
  SluiceConfig,
  | 'accessFile'
  | 'insecure'
  | 'oidcJwksUrl'
  | 'oidcIssuer'
  | 'oidcAudience'
  | 'tlsCert'
  | 'tlsKey'
  | 'httpHeadersTimeoutMs'
  | 'httpRequestTimeoutMs'
  | 'httpIdleTimeoutMs'
  | 'httpKeepAliveTimeoutMs'
  | 'httpMaxConnections'
  | 'httpMaxPipelined'
>;

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function refuse(response: ServerResponse, status: 401 | 403, code: string, message: string): void {
  response.writeHead(status, { 'content-type': 'application/json', ...(status === 401 ? { 'www-authenticate': API_CHALLENGE } : {}) }).end(JSON.stringify({ error: code, message }));
}

export async function startMetricsServer(registry: Registry, options: { config: MetricsServerConfig; host: string; port: number }, log: Logger): Promise<MetricsServer> {
  const { config, host, port } = options;
  checkExposure(config, host, 'worker metrics', log);
  const control = accessControl(config);

  /** Whether the request may read the metrics; answers it with 401 or 403 when not. */
  const allowed = async (request: IncomingMessage, response: ServerResponse): Promise<boolean> => {
    if (control.open) return true;
    let principal;
    try {
      principal = await control.authenticator!.fromHeader(request.headers.authorization);
    } catch (error) {
      refuse(response, 401, 'SLUICE_UNAUTHENTICATED', (error as Error).message);
      return false;
    }
    const decision = authorize(principal, [{ kind: 'metrics' }]);
    if (decision.allowed) return true;
    if (decision.status === 401) refuse(response, 401, 'SLUICE_UNAUTHENTICATED', decision.reason);
    else {
      log.info({ principal: principal?.name, service: 'worker metrics' }, `access denied: ${decision.reason}`);
      refuse(response, 403, 'SLUICE_FORBIDDEN', decision.reason);
    }
    return false;
  };

  const handler = (request: IncomingMessage, response: ServerResponse): void => {
    if (request.method !== 'GET' || request.url?.split('?')[0] !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    allowed(request, response)
      .then(async (ok) => {
        if (ok) response.writeHead(200, { 'content-type': registry.contentType }).end(await registry.metrics());
      })
      .catch((error: unknown) => {
        log.error({ err: error }, 'collecting metrics failed');
        if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
      });
  };
  const server = serverFactory(config)(handler, {}) as Server;
  try {
    await listen(server, host, port);
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'EADDRINUSE' || port === 0) throw error;
    await listen(server, host, 0);
    log.warn({ wanted: port, port: (server.address() as AddressInfo).port }, 'worker metrics port taken (another worker process?); using a free port');
  }
  const address = server.address() as AddressInfo;
  const url = `${scheme(config)}://${host.includes(':') ? `[${host}]` : host}:${address.port}/metrics`;
  log.info({ url }, 'worker metrics listening');
  return {
    url,
    close: () => new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
  };
}
