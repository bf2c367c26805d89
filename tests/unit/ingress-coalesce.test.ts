import type { RequestListener, Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { serverFactory } from '../../access/http.ts';
import { admissionGate } from '../../producers/admission.ts';
import { drainingResponse } from '../../producers/draining.ts';

const transport = {
  tlsCert: undefined,
  tlsKey: undefined,
  httpHeadersTimeoutMs: 10_000,
  httpRequestTimeoutMs: 10_000,
  httpIdleTimeoutMs: 10_000,
  httpKeepAliveTimeoutMs: 10_000,
  httpMaxConnections: 100,
  httpMaxPipelined: 1000,
};

const postOrder = (id: number): string => {
  const body = `{"orderId":"o-${id}"}`;
  return `POST /v1/orders HTTP/1.1\r\nhost: x\r\nx-correlation-id: c-${id}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
};
const GET = 'GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n';

/** Writes `requests` in one write and reads until `expected` answers (or the connection's end) came back. */
async function exchange(port: number, requests: string[], expected: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const done = (): void => {
      socket.destroy();
      resolve(text);
    };
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
      if ((text.match(/HTTP\/1\.1 \d+/g) ?? []).length >= expected && text.endsWith('}')) done();
    });
    socket.on('end', done);
    socket.on('error', reject);
    socket.write(requests.join(''));
  });
}

describe('the ingress’s coalesced writes', () => {
  const servers: Server[] = [];
  afterEach(() => servers.splice(0).forEach((s) => s.close()));
  /** The ingress's listener stack (serverFactory, the draining response class, admission closed); counts the server sockets' writes to the kernel. */
  const listen = async (coalesce: boolean, options: { draining?: boolean; handler?: RequestListener } = {}): Promise<{ port: number; writes: () => number }> => {
    let writes = 0;
    const handler = admissionGate(options.handler ?? ((_req, res) => res.end('ok')), {
      admission: { admit: () => false },
      source: { backlog: 0, oldestWaitMs: 0 },
      paths: ['/v1/orders'],
      headers: { 'x-content-type-options': 'nosniff' },
      refused: () => {},
      coalesce,
    });
    const server = serverFactory(
      transport,
      drainingResponse(() => options.draining === true),
    )(handler, {}) as Server;
    servers.push(server);
    server.on('connection', (socket: Socket & { _write?: unknown; _writev?: unknown }) => {
      // The stream's two ways to the kernel (one syscall each): counted to tell one writev from one write per answer.
      for (const method of ['_write', '_writev'] as const) {
        const original = socket[method] as (...args: unknown[]) => unknown;
        socket[method] = (...args: unknown[]) => ((writes += 1), original.apply(socket, args));
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { port: (server.address() as AddressInfo).port, writes: () => writes };
  };
  const withoutDates = (text: string): string => text.replace(/\r\ndate: [^\r]*/gi, '');

  it('answers pipelined requests byte for byte as before, in order, with one write for the whole read', async () => {
    const requests = [...Array.from({ length: 50 }, (_, i) => postOrder(i)), GET, postOrder(50)];
    const before = await listen(false);
    const after = await listen(true);
    const old = await exchange(before.port, requests, 52);
    const coalesced = await exchange(after.port, requests, 52);
    expect(withoutDates(coalesced)).toBe(withoutDates(old));
    expect(coalesced.match(/HTTP\/1\.1 \d+/g)).toEqual([...Array<string>(50).fill('HTTP/1.1 503'), 'HTTP/1.1 200', 'HTTP/1.1 503']);
    expect(coalesced).toMatch(/retry-after: 1\r\n/i);
    expect(coalesced).toContain('x-correlation-id: c-49\r\n');
    expect(before.writes()).toBeGreaterThanOrEqual(50);
    // Node parses the whole read before the loop's check phase: every answer goes out in one writev.
    expect(after.writes()).toBeLessThanOrEqual(3);
  });

  it('still sends the answer before closing a connection while the ingress drains', async () => {
    const { port } = await listen(true, { draining: true });
    const text = await exchange(port, [postOrder(1), postOrder(2)], 1);
    expect(text.match(/HTTP\/1\.1 \d+/g)).toEqual(['HTTP/1.1 503']);
    expect(text).toMatch(/connection: close\r\n/i);
    expect(text).toContain('"error":"SLUICE_OVERLOADED"');
  });

  it('sends what a writer wrote even when it reuses its buffer once the write’s callback came', async () => {
    const { port } = await listen(true, {
      handler: (_req, res) => {
        const chunk = Buffer.from('{"a":1}');
        res.setHeader('content-length', 14);
        // Node's contract: after the callback the buffer is the writer's again (the read route's encoder reuses its own).
        res.write(chunk, () => {
          chunk.fill('z');
          res.end('{"b":2}');
        });
      },
    });
    // A refusal first: from then on the connection's writes are coalesced.
    const text = await exchange(port, [postOrder(0), GET], 2);
    expect(text.endsWith('{"a":1}{"b":2}')).toBe(true);
  });

  it('writes a large answer with Node’s backpressure, whole', async () => {
    const big = 'x'.repeat(4 * 1024 * 1024);
    const { port } = await listen(true, {
      handler: (_req, res) => {
        res.setHeader('content-type', 'application/json');
        res.setHeader('content-length', big.length + 8);
        res.write('{"a":"');
        res.write(big);
        res.end('"}');
      },
    });
    // A refusal first: from then on the connection's writes are coalesced.
    const text = await exchange(port, [postOrder(0), GET], 2);
    expect(text.length).toBeGreaterThan(big.length);
    expect(text.endsWith(`${big}"}`)).toBe(true);
  });
});
