import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../core/logger.ts';

/**
 * GET /metrics for worker processes. Several `sluice worker` processes on one
 * host would all want the configured port: the first gets it, the others fall
 * back to a free port and log it, rather than refusing to start a worker over
 * its metrics.
 */

export interface MetricsServer {
  readonly url: string;
  close(): Promise<void>;
}

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

export async function startMetricsServer(registry: Registry, host: string, port: number, log: Logger): Promise<MetricsServer> {
  const server = createServer((request, response) => {
    if (request.method !== 'GET' || request.url?.split('?')[0] !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (error: unknown) => {
        log.error({ err: error }, 'collecting metrics failed');
        response.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
      },
    );
  });
  try {
    await listen(server, host, port);
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'EADDRINUSE' || port === 0) throw error;
    await listen(server, host, 0);
    log.warn({ wanted: port, port: (server.address() as AddressInfo).port }, 'worker metrics port taken (another worker process?); using a free port');
  }
  const address = server.address() as AddressInfo;
  const url = `http://${host}:${address.port}/metrics`;
  log.info({ url }, 'worker metrics listening');
  return {
    url,
    close: () => new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
  };
}
