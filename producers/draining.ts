import { ServerResponse, type IncomingMessage, type OutgoingHttpHeader, type OutgoingHttpHeaders } from 'node:http';

/**
 * A request in flight when close starts keeps its keep-alive connection open afterwards, and Fastify's close
 * waits for that connection (up to the 72 s keep-alive timeout); while `draining()` says so, every answer
 * tells the client to close it (`Connection: close`) and Node closes it after the answer, so shutdown finishes.
 * Checked where Node writes the answer's head (every answer passes there, errors and 404s too) rather than in an
 * onSend hook, which cost every request a pass through Fastify's hook runner.
 */
export function drainingResponse(draining: () => boolean): typeof ServerResponse {
  return class DrainingResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
    override writeHead(statusCode: number, reason?: string | OutgoingHttpHeaders | OutgoingHttpHeader[], headers?: OutgoingHttpHeaders | OutgoingHttpHeader[]): this {
      if (draining()) this.shouldKeepAlive = false;
      // Node's writeHead takes (code, headers) or (code, reason, headers), told apart by the second's type.
      return typeof reason === 'string' ? super.writeHead(statusCode, reason, headers) : super.writeHead(statusCode, reason);
    }
  };
}
