import { createServer, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { headLines, writeHeadWith } from '../../access/http.ts';
import { securityHeaders } from '../../access/security-headers.ts';
import { loadConfig } from '../../core/config.ts';
import { drainingResponse } from '../../producers/draining.ts';

/**
 * writeHeadWith (the ingress's direct path and its admission refusals) joins the headers that never change once and
 * lets writeHead build the rest: the answer must be the one writeHead gives with every header, byte for byte, and
 * Node must still see the length and the connection's fate.
 */
const fixed = securityHeaders(loadConfig({}));
const lines = headLines(fixed);
let close: (() => Promise<void>) | undefined;
afterEach(async () => close?.());

/** The raw answers (Date blanked) to one request per way of writing, on connections kept alive; `draining` closes them. */
async function answers(draining: boolean): Promise<{ whole: string; joined: string }> {
  const write = (res: ServerResponse, joined: boolean): void => {
    const head = ['x-correlation-id', 'cid-1', 'content-type', 'application/json; charset=utf-8', 'content-length', '2', 'retry-after', '1'];
    if (joined) writeHeadWith(res, 503, lines, head);
    else res.writeHead(503, [...Object.entries(fixed).flat(), ...head]);
    res.end('{}');
  };
  const server = createServer({ ServerResponse: drainingResponse(() => draining) }, (req, res) => req.resume().on('end', () => write(res, req.url === '/joined')));
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  close = () => new Promise((resolve) => server.close(() => resolve()).closeAllConnections());
  const raw = (path: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
      let said = '';
      socket.on('data', (d) => {
        said += String(d);
        if (said.endsWith('{}')) socket.destroy();
      });
      socket.on('close', () => resolve(said.replace(/^Date: .*$/m, 'Date: -')));
      socket.on('error', reject);
      socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`);
    });
  return { whole: await raw('/whole'), joined: await raw('/joined') };
}

describe('writeHeadWith', () => {
  it('answers byte for byte as writeHead with every header, the length and keep-alive as Node sets them', async () => {
    const { whole, joined } = await answers(false);
    expect(joined).toBe(whole);
    expect(joined).toContain('\r\nx-content-type-options: nosniff\r\n');
    expect(joined).toContain('\r\nConnection: keep-alive\r\n');
    expect(joined).not.toContain('Transfer-Encoding');
    expect(joined.endsWith('\r\n\r\n{}')).toBe(true);
  });

  it('while the ingress drains: Connection: close, as writeHead with every header says it', async () => {
    const { whole, joined } = await answers(true);
    expect(joined).toBe(whole);
    expect(joined).toContain('\r\nConnection: close\r\n');
  });

  it('refuses a header Node would refuse, once, when the lines are made', () => {
    expect(() => headLines({ 'x-bad': 'a\r\nb' })).toThrow();
    expect(() => headLines({ 'bad name': 'a' })).toThrow();
  });
});
