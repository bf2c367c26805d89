import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { serverFactory } from '../../access/http.ts';
import { loadConfig } from '../../core/config.ts';
import { drainingResponse } from '../../producers/draining.ts';

/** Slow or greedy clients cannot hold sockets: header, request and idle timeouts, and a connection cap. */
const config = loadConfig({
  SLUICE_HTTP_HEADERS_TIMEOUT_MS: '1000',
  SLUICE_HTTP_REQUEST_TIMEOUT_MS: '1500',
  SLUICE_HTTP_IDLE_TIMEOUT_MS: '1000',
  SLUICE_HTTP_MAX_CONNECTIONS: '3',
});

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
});

async function server(): Promise<number> {
  app = Fastify({ serverFactory: serverFactory(config) });
  app.get('/', async () => 'ok');
  app.post('/', async () => 'ok');
  await app.listen({ host: '127.0.0.1', port: 0 });
  return (app.server.address() as { port: number }).port;
}

/** Milliseconds until the server ends the connection, and what it said before. */
function closedAfter(socket: Socket): Promise<{ ms: number; said: string }> {
  const started = Date.now();
  let said = '';
  socket.on('data', (d) => (said += String(d)));
  return new Promise((resolve) => socket.once('close', () => resolve({ ms: Date.now() - started, said })));
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

describe('HTTP limits', () => {
  /** A slow-loris client: a byte every 200 ms keeps the connection from being idle, so only the timeouts end it. */
  function dribble(socket: Socket): () => void {
    const timer = setInterval(() => socket.write('a'), 200);
    return () => clearInterval(timer);
  }

  it('closes a connection whose headers never finish', async () => {
    const socket = await open(await server());
    socket.write('GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    const stop = dribble(socket);
    const { ms, said } = await closedAfter(socket);
    stop();
    expect(ms).toBeLessThan(4000);
    expect(said).toMatch(/^HTTP\/1.1 408/);
  });

  it('closes a connection whose body never finishes', async () => {
    const socket = await open(await server());
    socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\nabc');
    const stop = dribble(socket);
    const { ms, said } = await closedAfter(socket);
    stop();
    expect(ms).toBeLessThan(5000);
    expect(said).toMatch(/^HTTP\/1.1 408/);
  });

  it('closes an idle connection', async () => {
    const socket = await open(await server());
    const { ms } = await closedAfter(socket);
    expect(ms).toBeGreaterThanOrEqual(900);
    expect(ms).toBeLessThan(4000);
  });

  it('refuses connections beyond the cap', async () => {
    const port = await server();
    const held = await Promise.all([open(port), open(port), open(port)]);
    const extra = await open(port);
    await closedAfter(extra);
    // Refused on arrival, not ended by the idle timeout: the three held (idle as long) are still open.
    expect(held.map((s) => s.readyState)).toEqual(['open', 'open', 'open']);
    for (const s of held) s.destroy();
  });
});

describe('draining (producers/draining.ts)', () => {
  it('answers with Connection: close and closes the connection while draining, keep-alive otherwise', async () => {
    let draining = false;
    app = Fastify({
      serverFactory: serverFactory(
        config,
        drainingResponse(() => draining),
      ),
    });
    app.get('/', async () => 'ok');
    app.get('/missing-is-a-404-too', async (_request, reply) => reply.code(404).send());
    await app.listen({ host: '127.0.0.1', port: 0 });
    const socket = await open((app.server.address() as { port: number }).port);
    const answer = (path: string): Promise<string> =>
      new Promise((resolve) => {
        socket.once('data', (d) => resolve(String(d)));
        socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
      });
    expect(await answer('/')).toMatch(/\r\nConnection: keep-alive\r\n/);
    draining = true;
    const closed = closedAfter(socket);
    expect(await answer('/missing-is-a-404-too')).toMatch(/^HTTP\/1.1 404[^]*\r\nConnection: close\r\n/);
    await closed;
  });
});

describe('a connection paused for its requests in progress (access/http.ts boundPipelining)', () => {
  /**
   * A read that ends inside a request leaves that request begun while the connection is paused at its bound, and
   * Node's header and request timeouts run from its first byte. Answers slower than them (an overload) must not
   * cost the client its connection and every answer in progress on it; once resumed, the client has the timeout again.
   */
  const paused = loadConfig({
    SLUICE_HTTP_HEADERS_TIMEOUT_MS: '1000',
    SLUICE_HTTP_REQUEST_TIMEOUT_MS: '1500',
    SLUICE_HTTP_MAX_PIPELINED: '2',
  });
  const slowMs = 3000;
  const post = (path: string, body: string) => `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  async function slowServer(): Promise<number> {
    app = Fastify({ serverFactory: serverFactory(paused) });
    app.post('/slow', async () => {
      await new Promise((resolve) => setTimeout(resolve, slowMs));
      return 'slow';
    });
    app.post('/', async () => 'ok');
    await app.listen({ host: '127.0.0.1', port: 0 });
    return (app.server.address() as { port: number }).port;
  }
  const statuses = (said: string) => said.match(/HTTP\/1\.1 \d+/g) ?? [];
  const until = async (done: () => boolean): Promise<void> => {
    while (!done()) await sleep(50);
  };

  it.each([
    ['its headers', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n', 'Content-Length: 2\r\n\r\nok'],
    ['its body', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\no', 'k'],
  ])('answers every request when a read ends inside %s and the answers ahead take longer than the timeouts', async (_part, begun, rest) => {
    const socket = await open(await slowServer());
    let said = '';
    socket.on('data', (d) => (said += String(d)));
    // One write: both slow requests and the start of a third are parsed before the pause at two in progress acts.
    socket.write(post('/slow', 'a') + post('/slow', 'b') + begun);
    await until(() => statuses(said).length >= 2 || socket.destroyed);
    expect(statuses(said)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 200']);
    socket.write(rest);
    await until(() => statuses(said).length >= 3 || socket.destroyed);
    expect(statuses(said)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 200']);
    expect(said.endsWith('ok')).toBe(true);
    socket.destroy();
  });

  it.each([
    ['its headers', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n'],
    ['its body', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\no'],
  ])('still closes the connection when, once resumed, the client never finishes %s', async (_part, begun) => {
    const socket = await open(await slowServer());
    const started = Date.now();
    const closed = closedAfter(socket);
    socket.write(post('/slow', 'a') + post('/slow', 'b') + begun);
    const { ms, said } = await closed;
    expect(statuses(said)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 408']);
    // Resumed after the slow answers (3 s); then the request timeout (1.5 s) again, and Node's check interval.
    expect(ms).toBeGreaterThanOrEqual(slowMs + 1000);
    expect(Date.now() - started).toBeLessThan(slowMs + 4000);
  });
});
