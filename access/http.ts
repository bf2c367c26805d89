import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, validateHeaderName, validateHeaderValue, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { FastifyServerFactory } from 'fastify';
import type { SluiceConfig } from '../core/config.ts';
import { ConfigError, InsecureBindError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { isLoopback } from '../core/loopback.ts';

/**
 * The HTTP listeners' transport: HTTPS when a certificate and key are
 * configured, and the limits that keep slow or greedy clients from holding
 * sockets (header, request and idle timeouts, a connection cap).
 */

type Transport = Pick<
  SluiceConfig,
  'tlsCert' | 'tlsKey' | 'httpHeadersTimeoutMs' | 'httpRequestTimeoutMs' | 'httpIdleTimeoutMs' | 'httpKeepAliveTimeoutMs' | 'httpMaxConnections' | 'httpMaxPipelined'
>;

function tlsFiles(config: Pick<SluiceConfig, 'tlsCert' | 'tlsKey'>): { cert: Buffer; key: Buffer } | undefined {
  if (config.tlsCert === undefined && config.tlsKey === undefined) return undefined;
  if (config.tlsCert === undefined || config.tlsKey === undefined) {
    throw new ConfigError(config.tlsCert === undefined ? 'SLUICE_TLS_CERT' : 'SLUICE_TLS_KEY', 'TLS needs both SLUICE_TLS_CERT and SLUICE_TLS_KEY');
  }
  const read = (file: string, option: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new ConfigError(option, `cannot read ${file}: ${(error as Error).message}`);
    }
  };
  return { cert: read(config.tlsCert, 'SLUICE_TLS_CERT'), key: read(config.tlsKey, 'SLUICE_TLS_KEY') };
}

export function scheme(config: Pick<SluiceConfig, 'tlsCert' | 'tlsKey'>): 'http' | 'https' {
  return config.tlsCert !== undefined && config.tlsKey !== undefined ? 'https' : 'http';
}

/** Where a listening service answers. A wildcard address is not one a client can call; loopback reaches it. */
export function listeningUrl(address: AddressInfo, config: Pick<SluiceConfig, 'tlsCert' | 'tlsKey'>): string {
  const host = address.address === '0.0.0.0' || address.address === '::' ? '127.0.0.1' : address.address;
  return `${scheme(config)}://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
}

const kInProgress = Symbol('requests in progress');
const kPausedHere = Symbol('paused for requests in progress');
const kLastRequest = Symbol('the last request whose headers were read');
const kTimeoutOwed = Symbol('a header or request timeout swallowed while paused here');
/** The request a swallowed timeout was running for (undefined: its headers were not read yet, so it is the next one), and the time it gets once resumed. */
interface OwedTimeout {
  request: IncomingMessage | undefined;
  timeoutMs: number;
}
/** Node's own pipelining flow control on a server socket (_http_server.js): `_paused`, and the parser it pauses after a read. */
type ServerSocket = Socket & {
  [kInProgress]?: number;
  [kPausedHere]?: boolean;
  [kLastRequest]?: IncomingMessage;
  [kTimeoutOwed]?: OwedTimeout;
  _paused?: boolean;
  parser?: { resume(): void } | null;
  server?: Server;
};

/** What Node says when it ends a connection for a header or request timeout and nobody else answers (_http_server.js). */
const REQUEST_TIMEOUT_RESPONSE = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n';

/**
 * Node's header and request timeouts run from a request's first byte and end in a 'clientError' (Fastify's listener
 * writes a 408 and destroys the connection, with every answer still in progress on it). A connection paused by
 * boundPipelining stops reading wherever its last read ended, often inside a request, and that request then waits for
 * the answers ahead of it: under an overload longer than the timeout, which then measured the server's slowness, not
 * the client's (open-loop soaks lost 4,333 and 40,899 requests' answers that way: README, issue 24's soaks). So the
 * timeout of a connection paused here is swallowed, and its request gets the whole request timeout again once the
 * connection is resumed (expireOwed): a client that never finishes it is still closed, a little later.
 */
function swallowTimeout(socket: ServerSocket, timeoutMs: number): boolean {
  if (socket[kPausedHere] !== true) return false;
  const last = socket[kLastRequest];
  socket[kTimeoutOwed] = { request: last !== undefined && !last.complete ? last : undefined, timeoutMs };
  return true;
}

/** A swallowed timeout's second chance is over: the connection ends as Node ends it, unless its request arrived whole. */
function expireOwed(socket: ServerSocket): void {
  const owed = socket[kTimeoutOwed];
  socket[kTimeoutOwed] = undefined;
  if (owed === undefined || socket.destroyed || owed.request?.complete === true) return;
  const error = Object.assign(new Error('request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' });
  if (socket.server?.emit('clientError', error, socket) === true) return;
  if (socket.writable) socket.write(REQUEST_TIMEOUT_RESPONSE);
  socket.destroy(error);
}

/**
 * `handler` with at most `max` requests in progress per connection, and at most `maxTotal` over all of them. Node's
 * parser reads pipelined requests ahead as fast as they arrive and pauses a connection only when its answers back up
 * (bytes unwritten), so a client pipelining thousands of requests held thousands in memory (1.28 GB RSS at 48,000/s
 * offered to the ingress). At `max` the connection is paused the way Node pauses it (its `_paused` flag, after which
 * Node pauses the parser too once the current read is parsed), and resumed when an answer brings it under `max` again.
 *
 * The bound per connection does not bound the listener: 1,000 connections of 32 each held 32,000 requests, each ~4 KB
 * of V8's heap for as long as the answer before it on its connection takes (HTTP/1.1 answers in order). Held for
 * seconds, they are promoted to the old generation, which grew to 530 MB in 15 s at 32,000/s offered; and V8 keeps the
 * pages of its peak heap (it releases its page pool only in a memory-reducing GC), so the RSS stayed at the peak for
 * good. At `maxTotal` the connection that brought a request is paused as well, and the paused ones are resumed in the
 * order they were paused, one per answer, while the listener is under `maxTotal`.
 */
export function boundPipelining(handler: RequestListener, max: number, maxTotal = Number.POSITIVE_INFINITY): RequestListener {
  let total = 0;
  /** Connections paused while at maxTotal, in the order they were paused (a Set: one entry each, deleted in order). */
  const waiting = new Set<ServerSocket>();
  const resume = (socket: ServerSocket): void => {
    socket[kPausedHere] = false;
    socket._paused = false;
    socket.parser?.resume();
    socket.resume();
    const owed = socket[kTimeoutOwed];
    if (owed !== undefined) setTimeout(expireOwed, owed.timeoutMs, socket).unref();
  };
  // One listener for every response (no closure per request): the response's request names the socket.
  function answered(this: ServerResponse): void {
    total -= 1;
    const socket = this.req.socket as ServerSocket;
    const inProgress = (socket[kInProgress] ?? 1) - 1;
    socket[kInProgress] = inProgress;
    if (socket[kPausedHere] === true && inProgress < max) {
      if (total < maxTotal) resume(socket);
      else waiting.add(socket);
    }
    if (waiting.size === 0 || total >= maxTotal) return;
    for (const next of waiting) {
      waiting.delete(next);
      // Closed meanwhile, or paused again at its own bound (its next answer resumes it).
      if (next.destroyed || next[kPausedHere] !== true || (next[kInProgress] ?? 0) >= max) continue;
      resume(next);
      break;
    }
  }
  return (req, res) => {
    const socket = req.socket as ServerSocket;
    socket[kLastRequest] = req;
    const owed = socket[kTimeoutOwed];
    if (owed !== undefined && owed.request === undefined) owed.request = req;
    const inProgress = (socket[kInProgress] ?? 0) + 1;
    socket[kInProgress] = inProgress;
    total += 1;
    res.on('close', answered);
    if ((inProgress >= max || total >= maxTotal) && socket._paused !== true) {
      socket[kPausedHere] = true;
      socket._paused = true;
      socket.pause();
      if (inProgress < max) waiting.add(socket);
    }
    handler(req, res);
  };
}

const kCoalesced = Symbol('writes coalesced');
type Write = (chunk: string | Uint8Array, encoding?: BufferEncoding, callback?: (error?: Error | null) => void) => boolean;

/**
 * Node writes every HTTP answer with a syscall of its own: end() uncorks the socket fully, and a pipelined answer is
 * flushed only once the one before it has finished, a tick later. Under overload most answers are small refusals, and
 * that syscall was ~40% of a refusal's CPU (bench/refusal-cost.ts). So a small write is held until the event loop's
 * next check phase (setImmediate) and every write held meanwhile goes out in one writev, in order; its callback is
 * called on the next tick, as Node calls a write's callback once the kernel took it (a held buffer is a copy, since
 * the callback frees the writer to reuse its own), so Node moves on to the connection's next answer at once and it
 * joins the same writev. A write that would take the socket's buffer past its high-water mark flushes what is held
 * and is written at once with Node's own return value (backpressure and 'drain' stay Node's), and end() flushes first,
 * so a `Connection: close` answer still goes out before the FIN. A connection destroyed meanwhile loses what is held,
 * as it loses what the kernel had not sent yet.
 */
export function coalesceWrites(socket: Socket): void {
  const held = socket as Socket & { [kCoalesced]?: true };
  if (held[kCoalesced]) return;
  held[kCoalesced] = true;
  const write = socket.write.bind(socket) as Write;
  const end = socket.end.bind(socket);
  let chunks: (string | Uint8Array)[] = [];
  let encodings: (BufferEncoding | undefined)[] = [];
  let bytes = 0;
  const flush = (): void => {
    if (chunks.length === 0) return;
    const [all, codes] = [chunks, encodings];
    chunks = [];
    encodings = [];
    bytes = 0;
    if (socket.destroyed) return;
    socket.cork();
    for (let i = 0; i < all.length; i++) write(all[i]!, codes[i]);
    socket.uncork();
  };
  socket.write = function (this: Socket, chunk: string | Uint8Array, encoding?: BufferEncoding | ((error?: Error | null) => void), callback?: (error?: Error | null) => void): boolean {
    if (typeof encoding === 'function') [callback, encoding] = [encoding, undefined];
    const size = typeof chunk === 'string' ? chunk.length : chunk.byteLength;
    if (socket.destroyed || !socket.writable || socket.writableLength + bytes + size >= socket.writableHighWaterMark) {
      flush();
      return write(chunk, encoding, callback);
    }
    if (chunks.length === 0) setImmediate(flush);
    // The callback tells the writer it may reuse its buffer (the read route's encoder does): a held one is copied.
    chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk));
    encodings.push(encoding ?? undefined);
    bytes += size;
    if (typeof callback === 'function') process.nextTick(callback, null);
    return true;
  } as Socket['write'];
  socket.end = function (this: Socket, ...args: unknown[]): Socket {
    flush();
    return (end as (...a: unknown[]) => Socket)(...args);
  } as Socket['end'];
}

/** Node's answer head once writeHead has built it (`_header`: what the first write sends ahead of the body). */
type HeadOf = ServerResponse & { _header: string | null };

/**
 * Headers that never change (the security headers) as head lines, validated once with Node's own checks: writeHead validates, matches and joins
 * every header of every answer, and these are the same for every answer (in a loop on the bench machine, writeHead with the ingress's
 * fourteen headers took 1.6 µs, the eleven joined once and the other three through writeHead 0.7 µs).
 */
export function headLines(headers: Readonly<Record<string, string>>): string {
  let lines = '';
  for (const [name, value] of Object.entries(headers)) {
    validateHeaderName(name);
    validateHeaderValue(name, value);
    lines += `${name}: ${value}\r\n`;
  }
  return lines;
}

/**
 * writeHead with `lines` (headLines) first, then `head`: the same bytes as writeHead(status, [...those headers, ...head]).
 * None of the fixed headers is one Node reads (connection, content-length, transfer-encoding, date, expect, trailer,
 * keep-alive), so they go in after Node built the head from the rest, right after its status line.
 */
export function writeHeadWith(res: ServerResponse, status: number, lines: string, head: readonly string[]): void {
  res.writeHead(status, head as string[]);
  const out = res as HeadOf;
  const built = out._header!;
  const statusLine = built.indexOf('\r\n') + 2;
  out._header = built.slice(0, statusLine) + lines + built.slice(statusLine);
}

/**
 * The most requests a listener has in progress over all its connections (boundPipelining): ~128 MB of V8's heap at
 * ~4 KB each. An overload soak at 20,000/s on 625 connections held 16,000+ (the rate times how long an answer waits
 * behind the accepted one before it on its connection): at 16,384 the bound paused two thirds of the connections and
 * their requests waited in the sockets, unseen by admission. So it is twice that: it halves what the capacity probe's
 * step at 64,000/s (2,000 connections of 32, SLUICE_HTTP_MAX_PIPELINED) held, 757 MB of heap in use at its end.
 */
const MAX_IN_PROGRESS = 32_768;

/**
 * Fastify's serverFactory: the Node server with TLS and limits applied, so every listener is built the same way.
 * `response`: the server's ServerResponse class, when a service needs its own (the ingress's, producers/draining.ts).
 */
export function serverFactory(config: Transport, response?: typeof ServerResponse): FastifyServerFactory {
  const tls = tlsFiles(config);
  // Node checks the header and request timeouts on this interval (30 s by default), so it bounds how late they fire.
  const checks = {
    connectionsCheckingInterval: Math.max(250, Math.min(config.httpHeadersTimeoutMs, config.httpRequestTimeoutMs) / 4),
    ...(response === undefined ? {} : { ServerResponse: response }),
  };
  return (fastifyHandler) => {
    const handler = boundPipelining(fastifyHandler, config.httpMaxPipelined, MAX_IN_PROGRESS);
    const server = (tls ? createHttpsServer({ ...tls, ...checks, minVersion: 'TLSv1.2' }, handler) : createHttpServer(checks, handler)) as Server;
    server.headersTimeout = config.httpHeadersTimeoutMs;
    server.requestTimeout = config.httpRequestTimeoutMs;
    // Before any listener (Fastify's ends the connection): a timeout of a connection paused here is swallowed (swallowTimeout).
    const emit = server.emit;
    server.emit = function (this: Server, event: string | symbol, error?: unknown, socket?: unknown): boolean {
      if (event === 'clientError' && (error as NodeJS.ErrnoException).code === 'ERR_HTTP_REQUEST_TIMEOUT' && swallowTimeout(socket as ServerSocket, this.requestTimeout)) return true;
      // eslint-disable-next-line prefer-rest-params -- every event passes through here ('request' per request): no array built for it.
      return Reflect.apply(emit, this, arguments) as boolean;
    } as Server['emit'];
    server.keepAliveTimeout = config.httpKeepAliveTimeoutMs;
    // Idle sockets (a client that connects and goes quiet) are closed; Node's default never does.
    server.setTimeout(config.httpIdleTimeoutMs, (socket) => socket.destroy());
    server.maxConnections = config.httpMaxConnections;
    return server;
  };
}

let openPostureLogged = false;

/**
 * The default posture: without an access file a service is open, which is
 * fine on loopback (a laptop) and said once; on any other address it is
 * refused unless --insecure (SLUICE_INSECURE) asks for it.
 */
export function checkExposure(config: Pick<SluiceConfig, 'accessFile' | 'insecure'>, host: string, service: string, log: Logger): void {
  if (config.accessFile !== undefined) return;
  if (!isLoopback(host)) {
    if (!config.insecure) {
      throw new InsecureBindError(
        `${service}: refusing to listen on ${host} without an access file: anyone who reaches it could do anything. Set SLUICE_ACCESS_FILE (see \`sluice access add-key\`), or pass --insecure to accept that.`,
      );
    }
    log.warn({ host, service }, 'no access file and --insecure: this service is open to anyone who reaches it');
    return;
  }
  if (!openPostureLogged) {
    openPostureLogged = true;
    log.info('no access file (SLUICE_ACCESS_FILE): the HTTP services are open to anyone on this machine; they listen on loopback only');
  }
}
