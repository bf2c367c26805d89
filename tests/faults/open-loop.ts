import { writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { randomOrder } from '../support/orders.ts';

/**
 * The open-loop generator's process (tests/faults/load.ts openLoopPipelined starts it, pinned with taskset to a core
 * of its own): in the test's own worker it shared the ingress's cores with vitest and the ledger's bookkeeping, and
 * whatever CPU it spent per request was taken from the ingress it measures, while its own lag made answers "late".
 * Everything per request is a few bytes: the request's bytes are copied from templates built once (the order id's
 * digits written in place) and written to a connection in bursts, answers are found by a bounded scan of their status
 * line and head (Content-Length, Retry-After) on the bytes as they come, and each outcome is kept in typed arrays,
 * written to a file at the end for the test to read.
 */

/** One stretch of an open-loop run: arrivals at a fixed rate for a while. */
export interface ArrivalPhase {
  name: string;
  ratePerSecond: number;
  durationMs: number;
}

/** How far the generator itself fell behind its schedule in one phase. */
export interface GeneratorLag {
  /** The latest any request was written after its arrival time (ms): the client's own CPU or event loop, not the server. */
  maxLateMs: number;
  /** Requests written more than LATE_MS after their arrival time. */
  lateSends: number;
  /** Requests written to a connection that already had `perConnection` unanswered (the server reads them when it can). */
  beyondPipelined: number;
  /** The most request bytes accepted by the client's sockets and not yet taken by the kernel (the server not reading). */
  maxUnwrittenKb: number;
  /** The generator process's CPU (user + system) per request of the phase, in µs. */
  cpuPerRequestUs: number;
}

export interface PipelinedOptions {
  /**
   * Connections opened before any load, requests dealt in turn to those with fewer than `perConnection` unanswered
   * (the server's pipelining bound, SLUICE_HTTP_MAX_PIPELINED), to the next in turn when all are full (counted):
   * size `connections` so that the rate times the answers' latency fits in connections × perConnection.
   */
  connections: number;
  perConnection: number;
  /** A connection whose oldest request has waited this long is closed; its requests count as unanswered (status 0). */
  timeoutMs: number;
}

/** What the process writes (JSON) besides the outcome arrays. */
export interface OpenLoopSummary {
  run: string;
  total: number;
  scheduled: Record<string, number>;
  lag: Record<string, GeneratorLag>;
  phaseStartMs: Record<string, number>;
}

/** The outcome arrays, in this order in the result file, each `total` long. */
export const ARRAYS = [
  ['status', Uint16Array],
  ['retryAfter', Uint16Array],
  ['startedMs', Float64Array],
  ['answeredMs', Float64Array],
  ['phaseOf', Uint8Array],
  ['sent', Uint8Array],
  // The connection (its slot: a replaced one keeps it) each request went on, to tell a few slow connections from a slow server.
  ['laneOf', Uint16Array],
  // Requests unanswered on that connection when it was written (at most 255): at the server's pipelining bound or past
  // it, the server reads it only as answers go out, so its wait began before the ingress saw it.
  ['aheadOf', Uint8Array],
] as const;

/** A request written this much after its arrival time counts as a late send of the generator. */
const LATE_MS = 100;
/**
 * The most requests one write takes to one connection: the arrivals of one 5 ms tick go out in bursts of up to this
 * many per connection, one system call each (one write per request, dealt round robin over a thousand connections,
 * cost the generator a system call per request).
 */
const BURST = 8;
/** The order id's fixed-width counter. */
const DIGITS = 12;
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');

/** A socket: requests written and not yet answered, in order (HTTP/1.1 answers in order), and the bytes of an incomplete answer. */
interface Lane {
  socket: Socket;
  waiting: number[];
  head: number;
  rest: Buffer | undefined;
  alive: boolean;
}

/**
 * The connection the next burst goes to, starting the look at `turn`: the next live one in turn with room under the
 * server's pipelining bound (`perConnection` unanswered), as a pooled HTTP client (undici's Pool) dispatches to a
 * connection that is not full. The server reads no further than its bound, so a request written past it waits in
 * the kernel behind that connection's slowest answer; dealt in strict turn, a few connections stuck behind one slow
 * answer each took their share of every burst late. With every live connection full, the next live one in turn
 * takes it all the same, and the one after it the burst after (the arrivals keep their times: open loop). `room`:
 * how many more the chosen one takes under the bound (0 or less when full); `next`: where the next look starts.
 */
export function chooseLane(lanes: readonly Pick<Lane, 'alive' | 'waiting' | 'head'>[], turn: number, perConnection: number): { slot: number; room: number; next: number } {
  let full = -1;
  for (let tried = 0; tried < lanes.length; tried++) {
    const slot = (turn + tried) % lanes.length;
    const lane = lanes[slot]!;
    // A dead connection is being replaced by expire().
    if (!lane.alive) continue;
    const room = perConnection - (lane.waiting.length - lane.head);
    if (room > 0) return { slot, room, next: slot + 1 };
    if (full < 0) full = slot;
  }
  // None live: the next in turn, written to as before (its replacement is being opened).
  if (full < 0) return { slot: turn % lanes.length, room: 0, next: turn + 1 };
  return { slot: full, room: 0, next: full + 1 };
}

/** The value of the header line at `from` (its name `name`, lower case, with the colon) as a number, or -1 if it is another header. */
function headerNumber(bytes: Buffer, from: number, to: number, name: Buffer): number {
  if (to - from <= name.length) return -1;
  for (let k = 0; k < name.length; k++) if ((bytes[from + k]! | 0x20) !== name[k]) return -1;
  let value = 0;
  for (let k = from + name.length; k < to; k++) {
    const c = bytes[k]!;
    if (c >= 48 && c <= 57) value = value * 10 + c - 48;
    else if (c !== 32) break;
  }
  return value;
}
const CONTENT_LENGTH = Buffer.from('content-length:', 'latin1');
const RETRY_AFTER = Buffer.from('retry-after:', 'latin1');

async function runOpenLoop(
  url: string,
  phases: readonly ArrivalPhase[],
  options: PipelinedOptions,
): Promise<{ summary: OpenLoopSummary; arrays: Record<(typeof ARRAYS)[number][0], Uint16Array | Float64Array | Uint8Array> }> {
  const target = new URL(url);
  const port = Number(target.port);
  const total = phases.reduce((sum, p) => sum + Math.floor((p.durationMs * p.ratePerSecond) / 1000), 0);
  const status = new Uint16Array(total);
  /** Retry-After in seconds; 0 when the answer had none. */
  const retryAfter = new Uint16Array(total);
  const startedMs = new Float64Array(total);
  const answeredMs = new Float64Array(total);
  const phaseOf = new Uint8Array(total);
  const sent = new Uint8Array(total);
  const laneOf = new Uint16Array(total);
  const aheadOf = new Uint8Array(total);
  // Order ids `order-<run>-<12 digits>`: fixed width, so the digits are written into a copy of a template.
  const run = Math.random().toString(16).slice(2, 10).padEnd(8, '0');
  const templates = Array.from({ length: 16 }, () => {
    const body = JSON.stringify(randomOrder({ orderId: `order-${run}-${'0'.repeat(DIGITS)}` }));
    const text = `POST ${target.pathname} HTTP/1.1\r\nhost: ${target.host}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    return { bytes: Buffer.from(text, 'latin1'), digitsAt: text.indexOf(`order-${run}-`) + `order-${run}-`.length };
  });

  const began = performance.now();
  const finish = (lane: Lane, code: number, retry: number, atMs: number): void => {
    const i = lane.waiting[lane.head++]!;
    status[i] = code;
    retryAfter[i] = retry;
    answeredMs[i] = atMs;
    if (lane.head === lane.waiting.length) {
      lane.waiting.length = 0;
      lane.head = 0;
    }
  };
  /** The complete answers in `bytes`, each one outcome; returns the bytes of an incomplete last one. */
  const scan = (lane: Lane, bytes: Buffer): Buffer | undefined => {
    const now = performance.now() - began;
    let at = 0;
    for (;;) {
      const end = bytes.indexOf(HEAD_END, at);
      if (end < 0) break;
      // `HTTP/1.1 503 ...`: the status's three digits at 9.
      const code = (bytes[at + 9]! - 48) * 100 + (bytes[at + 10]! - 48) * 10 + (bytes[at + 11]! - 48);
      let length = 0;
      let retry = 0;
      for (let line = bytes.indexOf(13, at) + 2; line < end + 2;) {
        const eol = bytes.indexOf(13, line);
        const first = bytes[line]! | 0x20;
        if (first === 0x63) length = Math.max(length, headerNumber(bytes, line, eol, CONTENT_LENGTH));
        else if (first === 0x72) retry = Math.max(retry, headerNumber(bytes, line, eol, RETRY_AFTER));
        line = eol + 2;
      }
      if (bytes.length < end + 4 + length) break;
      if (lane.head < lane.waiting.length) finish(lane, code, retry, now);
      at = end + 4 + length;
    }
    return at === bytes.length ? undefined : Buffer.from(bytes.subarray(at));
  };
  const open = (): Promise<Lane> =>
    new Promise((resolve) => {
      const lane: Lane = { socket: createConnection({ port, host: target.hostname, noDelay: true }), waiting: [], head: 0, rest: undefined, alive: true };
      lane.socket.on('connect', () => resolve(lane));
      lane.socket.on('data', (chunk: Buffer) => {
        lane.rest = scan(lane, lane.rest === undefined ? chunk : Buffer.concat([lane.rest, chunk]));
      });
      const fail = (): void => {
        if (!lane.alive) return;
        lane.alive = false;
        while (lane.head < lane.waiting.length) finish(lane, 0, 0, performance.now() - began);
        resolve(lane);
      };
      lane.socket.on('error', fail);
      lane.socket.on('close', fail);
    });
  // Opened a hundred at a time before any load, while the server is idle: opened in a burst when the answers slow down,
  // they overflow the listen queue of a busy server (Node's default backlog is 511), whose dropped SYNs the kernel
  // resends after 1, 3, 7, 15 and 31 s, and the run then measures TCP's back-off instead of the ingress.
  const lanes: Lane[] = [];
  for (let opened = 0; opened < options.connections; opened += 100) lanes.push(...(await Promise.all(Array.from({ length: Math.min(100, options.connections - opened) }, open))));

  const summary: OpenLoopSummary = { run, total, scheduled: {}, lag: {}, phaseStartMs: {} };
  for (const p of phases) summary.lag[p.name] = { maxLateMs: 0, lateSends: 0, beyondPipelined: 0, maxUnwrittenKb: 0, cpuPerRequestUs: 0 };
  let next = 0;
  let turn = 0;
  /** Sends requests next..next+count-1 of `phase`: in bursts of up to BURST, one write each, to the live connections in turn. */
  const send = (phase: number, count: number): void => {
    const lag = summary.lag[phases[phase]!.name]!;
    const now = performance.now() - began;
    while (count > 0) {
      const { slot, room, next: following } = chooseLane(lanes, turn, options.perConnection);
      turn = following;
      const lane = lanes[slot]!;
      const burst = Math.min(BURST, count, room > 0 ? room : BURST);
      let size = 0;
      for (let k = 0; k < burst; k++) size += templates[(next + k) % templates.length]!.bytes.length;
      const out = Buffer.allocUnsafe(size);
      let at = 0;
      for (let k = 0; k < burst; k++, next++) {
        const template = templates[next % templates.length]!;
        template.bytes.copy(out, at);
        for (let d = DIGITS - 1, v = next; d >= 0; d--, v = Math.floor(v / 10)) out[at + template.digitsAt + d] = 48 + (v % 10);
        at += template.bytes.length;
        phaseOf[next] = phase;
        startedMs[next] = now;
        sent[next] = 1;
        laneOf[next] = slot;
        const ahead = lane.waiting.length - lane.head;
        aheadOf[next] = Math.min(255, ahead);
        if (ahead >= options.perConnection) lag.beyondPipelined += 1;
        lane.waiting.push(next);
      }
      lane.socket.write(out);
      count -= burst;
    }
    let unwritten = 0;
    for (const lane of lanes) unwritten += lane.socket.writableLength;
    lag.maxUnwrittenKb = Math.max(lag.maxUnwrittenKb, Math.round(unwritten / 1024));
  };
  /** Connections whose oldest request waited past the timeout are closed and replaced. */
  const expire = async (): Promise<void> => {
    const now = performance.now() - began;
    for (let k = 0; k < lanes.length; k++) {
      const lane = lanes[k]!;
      if (lane.alive && lane.head < lane.waiting.length && now - startedMs[lane.waiting[lane.head]!]! > options.timeoutMs) lane.socket.destroy();
      if (!lane.alive) lanes[k] = await open();
    }
  };

  await new Promise<void>((resolve) => {
    let index = 0;
    let phaseBegan = 0;
    let issued = 0;
    // One expire() at a time: two would each replace the same dead connection, and the one replaced twice would stay open.
    let expiring = false;
    const expireOnce = (): void => {
      if (expiring) return;
      expiring = true;
      void expire().finally(() => (expiring = false));
    };
    let cpuAtPhase = process.cpuUsage();
    const closePhase = (phase: ArrivalPhase): void => {
      const cpu = process.cpuUsage(cpuAtPhase);
      cpuAtPhase = process.cpuUsage();
      const requests = summary.scheduled[phase.name] ?? 0;
      summary.lag[phase.name]!.cpuPerRequestUs = requests > 0 ? Math.round(((cpu.user + cpu.system) / requests) * 10) / 10 : 0;
    };
    summary.phaseStartMs[phases[0]!.name] = 0;
    const timer = setInterval(() => {
      expireOnce();
      const now = performance.now() - began;
      for (let phase = phases[index]; phase !== undefined; phase = phases[index]) {
        const due = Math.floor((Math.min(now - phaseBegan, phase.durationMs) * phase.ratePerSecond) / 1000);
        if (due > issued) {
          // Arrival k of the phase is due at k / rate: how late the first of these is, and how many are later than LATE_MS.
          const lag = summary.lag[phase.name]!;
          lag.maxLateMs = Math.max(lag.maxLateMs, Math.round(now - phaseBegan - (issued * 1000) / phase.ratePerSecond));
          const lateBy = Math.floor((Math.min(now - phaseBegan - LATE_MS, phase.durationMs) * phase.ratePerSecond) / 1000);
          lag.lateSends += Math.max(0, Math.min(due, lateBy) - issued);
          summary.scheduled[phase.name] = (summary.scheduled[phase.name] ?? 0) + due - issued;
          send(index, due - issued);
        }
        issued = due;
        if (now - phaseBegan < phase.durationMs) return;
        // The phase's CPU includes reading the answers of its requests that came in the next phase's first moments, and not its last ones': the same on average.
        closePhase(phase);
        phaseBegan += phase.durationMs;
        issued = 0;
        index += 1;
        if (phases[index]) summary.phaseStartMs[phases[index]!.name] = phaseBegan;
      }
      clearInterval(timer);
      const drained = setInterval(() => {
        expireOnce();
        if (lanes.some((lane) => lane.alive && lane.head < lane.waiting.length)) return;
        clearInterval(drained);
        resolve();
      }, 20);
    }, 5);
  });
  for (const lane of lanes) lane.socket.destroy();
  return { summary, arrays: { status, retryAfter, startedMs, answeredMs, phaseOf, sent, laneOf, aheadOf } };
}

// As a process: `node open-loop.ts <url> <phases JSON> <options JSON> <result file>`; the result file holds the
// summary's JSON length (4 bytes), the JSON, then the arrays of ARRAYS in order.
if (process.argv[1] === import.meta.filename) {
  const [url, phases, options, file] = process.argv.slice(2);
  const { summary, arrays } = await runOpenLoop(url!, JSON.parse(phases!) as ArrivalPhase[], JSON.parse(options!) as PipelinedOptions);
  const json = Buffer.from(JSON.stringify(summary));
  const length = Buffer.alloc(4);
  length.writeUInt32LE(json.length);
  writeFileSync(file!, Buffer.concat([length, json, ...ARRAYS.map(([name]) => Buffer.from(arrays[name].buffer, arrays[name].byteOffset, arrays[name].byteLength))]));
  // Done: a connection still opening (a replacement for one that timed out) must not keep the process alive.
  process.exit(0);
}
