import { createServer, type RequestListener, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { boundPipelining } from '../../access/http.ts';
import { BatchingProducer } from '../../producers/batching-producer.ts';
import { Admission, admissionGate, admissionLimit, DRAIN_FLOOR_PER_S, SHED_SHARE } from '../../producers/admission.ts';

describe('admission by the produce queue’s expected wait', () => {
  it('admits while the backlog fits the budget at the drain rate, never below the floor, at most maxQueued', () => {
    // 2,000 records/s for 1 s: 2,000 records may wait.
    expect(admissionLimit(2000, 50, 1000, 0, 50_000)).toBe(2000);
    // Nothing drained (an outage): the floor's worth.
    expect(admissionLimit(0, 50, 1000, 0, 50_000)).toBe(50);
    expect(admissionLimit(1_000_000, 50, 1000, 0, 5000)).toBe(5000);
    // A budget too small for one record still admits one at a time.
    expect(admissionLimit(10, 50, 1, 0, 50_000)).toBe(1);
    // The event loop 400 ms behind: 600 ms of the budget left for the queue; behind by more, a quarter, never below the floor.
    expect(admissionLimit(2000, 50, 1000, 400, 50_000)).toBe(1200);
    expect(admissionLimit(2000, 50, 1000, 5000, 50_000)).toBe(500);
    expect(admissionLimit(100, 50, 1000, 5000, 50_000)).toBe(50);
  });

  it('takes maxQueued until it has measured a drain rate, then the measured one', () => {
    const admission = new Admission({ budgetMs: 1000, maxQueued: 10_000 });
    expect(admission.limit).toBe(10_000);
    expect(admission.admit(9_999)).toBe(true);
    // Busy for 250 ms and 500 records acknowledged: 2,000/s, so 2,000 records fit in the budget.
    admission.observe({ drained: 500, elapsedMs: 250, busy: true, lagMs: 0 });
    expect(admission.drainPerS).toBe(2000);
    expect(admission.limit).toBe(2000);
    expect(admission.admit(1999)).toBe(true);
    expect(admission.admit(2000)).toBe(false);
  });

  it('learns nothing from an interval the producer was not busy throughout, unless it refused meanwhile', () => {
    const admission = new Admission({ budgetMs: 1000, maxQueued: 10_000 });
    admission.observe({ drained: 500, elapsedMs: 250, busy: true, lagMs: 0 });
    // 10 records/s arrived and were sent: that is the demand, not what Kafka can take.
    admission.observe({ drained: 3, elapsedMs: 250, busy: false, lagMs: 0 });
    expect(admission.limit).toBe(2000);
  });

  it('falls to the floor during an outage and probes back up within seconds once Kafka drains again', () => {
    const admission = new Admission({ budgetMs: 1000, maxQueued: 10_000 });
    admission.observe({ drained: 500, elapsedMs: 250, busy: true, lagMs: 0 });
    // A short stall (half a second, nothing acknowledged) lowers the limit without dropping it to the floor.
    for (let i = 0; i < 2; i++) admission.observe({ drained: 0, elapsedMs: 250, busy: true, lagMs: 0 });
    expect(admission.limit).toBe(1125);
    // Every broker down: busy, nothing acknowledged.
    for (let i = 0; i < 40; i++) admission.observe({ drained: 0, elapsedMs: 250, busy: true, lagMs: 0 });
    expect(admission.drainPerS).toBe(DRAIN_FLOOR_PER_S);
    expect(admission.limit).toBe(DRAIN_FLOOR_PER_S);
    expect(admission.admit(DRAIN_FLOOR_PER_S)).toBe(false);
    // Kafka is back: the floor's backlog drains within the interval (not busy) while requests were refused, so the
    // estimate doubles each interval instead of staying where nothing admitted can raise it.
    let intervals = 0;
    while (admission.limit < 2000) {
      expect(admission.admit(admission.limit)).toBe(false);
      admission.observe({ drained: admission.limit / 4, elapsedMs: 250, busy: false, lagMs: 0 });
      intervals += 1;
    }
    expect(intervals).toBeLessThanOrEqual(6);
  });

  it('refuses, while the queue’s limit is refusing, once the oldest request waiting for Kafka has waited past the budget', () => {
    const admission = new Admission({ budgetMs: 1000, maxQueued: 10_000 });
    admission.observe({ drained: 500, elapsedMs: 250, busy: true, lagMs: 0 });
    // Nothing refused: a short queue past the budget (Kafka electing a leader) still waits for Kafka within the deadline.
    expect(admission.admit(10, { oldestWaitMs: 5000 })).toBe(true);
    // The limit refused in the interval: ten records waiting, well within it (2,000), but the oldest has waited past the
    // budget: the queue is slower than the estimate says, and a request admitted now would wait as long.
    expect(admission.admit(admission.limit, { oldestWaitMs: 0 })).toBe(false);
    admission.observe({ drained: 500, elapsedMs: 250, busy: true, lagMs: 0, oldestWaitMs: 100 });
    expect(admission.admit(10, { oldestWaitMs: 999 })).toBe(true);
    expect(admission.admit(10, { oldestWaitMs: 1001 })).toBe(false);
    // Counted by the rule that refused (sluice_ingress_admission_refused_total{rule}).
    expect(admission.refusedBy).toEqual({ limit: 1, sojourn: 1, cpuGate: 0 });
  });

  it('keeps the whole budget for the sojourn rule when the loop is late, and does not keep the rule on by its own refusals', () => {
    const admission = new Admission({ budgetMs: 1000, maxQueued: 10_000 });
    admission.observe({ drained: 500, elapsedMs: 250, busy: true, lagMs: 0 });
    expect(admission.admit(admission.limit, { oldestWaitMs: 0 })).toBe(false);
    // The loop 600 ms late (smoothed): the limit shrinks by it, but the wait measured already holds the delay (the
    // acknowledgements are read late), so the rule still refuses only past the whole budget. Taking the delay off it
    // too refused 30,323/s with 1,557/s accepted in a CI soak, the refusals keeping the loop late.
    for (let i = 0; i < 20; i++) admission.observe({ drained: 500, elapsedMs: 250, busy: true, lagMs: 600 });
    expect(admission.admit(admission.limit, { oldestWaitMs: 0 })).toBe(false);
    admission.observe({ drained: 500, elapsedMs: 250, busy: true, lagMs: 600 });
    expect(admission.admit(10, { oldestWaitMs: 999 })).toBe(true);
    expect(admission.admit(10, { oldestWaitMs: 1001 })).toBe(false);
    // An interval where only the sojourn rule refused (the queue under its limit): the next one does not apply it.
    admission.observe({ drained: 500, elapsedMs: 250, busy: true, lagMs: 600 });
    expect(admission.admit(10, { oldestWaitMs: 1001 })).toBe(true);
    expect(admission.refusedBy).toEqual({ limit: 2, sojourn: 1, cpuGate: 0 });
  });

  it('keeps a standing queue to what the peak drain empties in a share of the budget while its limit refuses, and the whole budget once it does not', () => {
    const admission = new Admission({ budgetMs: 1000, maxQueued: 50_000 });
    // Kafka drains 8,000 records/s: not refusing, the whole budget's worth may wait, to ride out a stall.
    for (let i = 0; i < 20; i++) admission.observe({ drained: 2000, elapsedMs: 250, busy: true, lagMs: 0, oldestWaitMs: 400 });
    expect(admission.limit).toBe(8000);
    expect(admission.drainPerS).toBeCloseTo(8000);
    // A sustained overload: the limit refuses and the producer is busy throughout. What waits beyond SHED_SHARE of the
    // budget only makes each accepted request (and the refusals pipelined behind it) wait longer.
    expect(admission.admit(8000)).toBe(false);
    admission.observe({ drained: 2000, elapsedMs: 250, busy: true, lagMs: 0, oldestWaitMs: 900 });
    expect(admission.limit).toBe(Math.floor(8000 * SHED_SHARE));
    // It measures what it lets through: smaller sends, a lower drain. The queue stays sized by the peak, not by that.
    for (let i = 0; i < 8; i++) {
      expect(admission.admit(admission.limit)).toBe(false);
      admission.observe({ drained: 1000, elapsedMs: 250, busy: true, lagMs: 0, oldestWaitMs: 900 });
    }
    expect(admission.drainPerS).toBeLessThan(5000);
    expect(admission.limit).toBeGreaterThan(Math.floor(7500 * SHED_SHARE));
    // Kafka itself slows down (1,000/s, the oldest waiting past the budget): the estimate's own limit is the lower one.
    for (let i = 0; i < 12; i++) {
      admission.admit(admission.limit);
      admission.observe({ drained: 250, elapsedMs: 250, busy: true, lagMs: 0, oldestWaitMs: 1200 });
    }
    expect(admission.limit).toBeLessThan(1200);
    // The overload is over (nothing refused in an interval): the whole budget of the estimate again.
    admission.observe({ drained: 250, elapsedMs: 250, busy: true, lagMs: 0, oldestWaitMs: 100 });
    expect(admission.limit).toBe(Math.floor(admission.drainPerS));
    // Refusing while the producer ran dry (the queue drained within the interval) is no standing queue.
    const dry = new Admission({ budgetMs: 1000, maxQueued: 50_000 });
    dry.observe({ drained: 2000, elapsedMs: 250, busy: true, lagMs: 0 });
    expect(dry.admit(8000)).toBe(false);
    dry.observe({ drained: 2000, elapsedMs: 250, busy: false, lagMs: 0 });
    expect(dry.limit).toBeGreaterThanOrEqual(8000);
  });

  it('takes the event loop’s delay, smoothed, off the budget', () => {
    const admission = new Admission({ budgetMs: 1000, maxQueued: 10_000 });
    admission.observe({ drained: 500, elapsedMs: 250, busy: true, lagMs: 0 });
    expect(admission.limit).toBe(2000);
    // The loop ran the sampler 2 s late: a quarter of that counts at once (the loop's delay is smoothed like the rate).
    admission.observe({ drained: 500, elapsedMs: 250, busy: true, lagMs: 2000 });
    expect(admission.lagMs).toBe(500);
    expect(admission.limit).toBe(1000);
    for (let i = 0; i < 20; i++) admission.observe({ drained: 500, elapsedMs: 250, busy: true, lagMs: 2000 });
    expect(admission.limit).toBe(500);
  });

  it('does not talk itself down when its own limit, not Kafka, keeps the sends small', () => {
    const admission = new Admission({ budgetMs: 1000, maxQueued: 100_000 });
    admission.observe({ drained: 500, elapsedMs: 250, busy: true, lagMs: 0, oldestWaitMs: 100 });
    expect(admission.limit).toBe(2000);
    // Refusing, and each interval acknowledges less (fewer records per send), but what waits goes out in 100 ms: the
    // estimate rises by a quarter per interval instead of following the measured rate down.
    for (let i = 0; i < 4; i++) {
      expect(admission.admit(admission.limit)).toBe(false);
      admission.observe({ drained: 250, elapsedMs: 250, busy: true, lagMs: 0, oldestWaitMs: 100 });
    }
    // (The limit while refusing is the standing queue's, SHED_SHARE of the budget at the peak drain, the lower one.)
    expect(admission.drainPerS).toBe(2000 * 1.25 ** 4);
    expect(admission.limit).toBeLessThanOrEqual(Math.floor(2000 * SHED_SHARE));
    // The oldest request has waited past half the budget: the measured rate counts again and the estimate falls.
    const before = admission.drainPerS;
    expect(admission.admit(admission.limit)).toBe(false);
    admission.observe({ drained: 250, elapsedMs: 250, busy: true, lagMs: 0, oldestWaitMs: 600 });
    expect(admission.drainPerS).toBeLessThan(before);
    // Refusals by the CPU gate say nothing about the queue: they raise nothing (a soak saw the estimate reach 493,696/s).
    const gated = new Admission({ budgetMs: 1000, maxQueued: 100_000, now: () => 0 });
    gated.observe({ drained: 500, elapsedMs: 250, busy: true, lagMs: 0, oldestWaitMs: 100 });
    for (let i = 0; i < 4; i++) gated.observe({ drained: 500, elapsedMs: 250, busy: true, lagMs: 100, utilization: 1, oldestWaitMs: 100 });
    expect(gated.cpuRatePerS).toBeLessThan(Number.POSITIVE_INFINITY);
    expect(gated.admit(0)).toBe(false);
    expect(gated.refusedBy).toEqual({ limit: 0, sojourn: 0, cpuGate: 1 });
    gated.observe({ drained: 500, elapsedMs: 250, busy: true, lagMs: 100, utilization: 1, oldestWaitMs: 100 });
    expect(gated.drainPerS).toBe(2000);
    // Without refusals nothing is raised: a fast queue that admits everything has learnt nothing about its capacity.
    const settled = admission.drainPerS;
    admission.observe({ drained: 250, elapsedMs: 250, busy: true, lagMs: 0, oldestWaitMs: 100 });
    expect(admission.drainPerS).toBeLessThan(settled);
  });

  it('raises the estimate no further than the rate at which its limit is maxQueued, so a slower Kafka is seen within seconds', () => {
    const admission = new Admission({ budgetMs: 1000, maxQueued: 5000 });
    admission.observe({ drained: 500, elapsedMs: 250, busy: true, lagMs: 0, oldestWaitMs: 100 });
    // A sustained overload: the cap refuses every interval while what waits goes out fast (a soak's five minutes).
    for (let i = 0; i < 1200; i++) {
      expect(admission.admit(5000)).toBe(false);
      admission.observe({ drained: 1000, elapsedMs: 250, busy: true, lagMs: 0, oldestWaitMs: 100 });
    }
    expect(admission.drainPerS).toBe(5000);
    // The queue's limit while refusing: the standing queue's (SHED_SHARE of the budget at the 4,000/s measured), below the cap.
    expect(admission.limit).toBeGreaterThanOrEqual(Math.floor(4000 * SHED_SHARE) - 1);
    expect(admission.limit).toBeLessThanOrEqual(Math.floor(4000 * SHED_SHARE));
    // Then Kafka drains 1,000 records/s: within two seconds the limit is what drains within the budget, not the cap.
    for (let i = 0; i < 8; i++) admission.observe({ drained: 250, elapsedMs: 250, busy: true, lagMs: 0, oldestWaitMs: 900 });
    expect(admission.limit).toBeLessThan(2500);
  });

  it('closes the CPU gate after a whole second of a saturated, late event loop, not after a brief stall, and opens it again', () => {
    // A still clock: the gate's tokens accrue only where the test says time passed (a loaded box may stall between calls).
    const clock = { ms: 0 };
    const admission = new Admission({ budgetMs: 1000, maxQueued: 100_000, now: () => clock.ms });
    admission.observe({ drained: 5000, elapsedMs: 250, busy: true, lagMs: 0 });
    const admitN = (n: number): number => {
      let admitted = 0;
      for (let i = 0; i < n; i++) if (admission.admit(0)) admitted += 1;
      return admitted;
    };
    // A stall: busy and 300 ms late for three samples, then idle time again. The gate stays open.
    for (let i = 0; i < 3; i++) {
      expect(admitN(1000)).toBe(1000);
      admission.observe({ drained: 5000, elapsedMs: 550, busy: true, lagMs: 300, utilization: 1 });
    }
    admission.observe({ drained: 5000, elapsedMs: 250, busy: true, lagMs: 0, utilization: 0.5 });
    expect(admission.cpuRatePerS).toBe(Number.POSITIVE_INFINITY);
    // Late by 100 ms but not busy throughout (a box busy with other processes): open.
    for (let i = 0; i < 8; i++) admission.observe({ drained: 5000, elapsedMs: 350, busy: true, lagMs: 100, utilization: 0.6 });
    expect(admission.cpuRatePerS).toBe(Number.POSITIVE_INFINITY);
    // Saturated for four samples in a row, 1,000 admitted in each 250 ms (4,000/s): at most 3,200/s from then on.
    for (let i = 0; i < 4; i++) {
      admitN(1000);
      admission.observe({ drained: 5000, elapsedMs: 250, busy: true, lagMs: 100, utilization: 0.99 });
    }
    expect(admission.cpuRatePerS).toBeCloseTo(3200);
    // The gate admits no burst: its tokens accrue from when it closed.
    expect(admitN(800)).toBeLessThan(10);
    // Each further saturated sample cuts again, down to half the rate it closed at (refusals alone may saturate the loop).
    for (let i = 0; i < 10; i++) admission.observe({ drained: 5000, elapsedMs: 250, busy: true, lagMs: 100, utilization: 0.99 });
    expect(admission.cpuRatePerS).toBeCloseTo(2000);
    // The loop has idle time again: the rate grows by a tenth per sample and the gate opens at twice what is admitted.
    let samples = 0;
    while (admission.cpuRatePerS !== Number.POSITIVE_INFINITY && samples < 100) {
      admission.observe({ drained: 5000, elapsedMs: 250, busy: true, lagMs: 0, utilization: 0.5 });
      samples += 1;
    }
    expect(samples).toBe(1);
    // Saturated again within a second, the most admitted lately being the closed gate's 2,000/s: it keeps the floor it
    // closed with before (halving it at each reopening took a soak's accepted rate from 6,384/s to 559/s).
    const closeAt = (perSample: number): void => {
      for (let i = 0; i < 4; i++) {
        admitN(perSample);
        clock.ms += 250;
        admission.observe({ drained: 5000, elapsedMs: 250, busy: true, lagMs: 100, utilization: 0.99 });
      }
    };
    closeAt(500);
    for (let i = 0; i < 10; i++) admission.observe({ drained: 5000, elapsedMs: 250, busy: true, lagMs: 100, utilization: 0.99 });
    expect(admission.cpuRatePerS).toBeCloseTo(2000);
    // Open for ten seconds, the floor is forgotten: a new overload at 1,000/s closes it to half of that at the least.
    admission.observe({ drained: 5000, elapsedMs: 250, busy: true, lagMs: 0, utilization: 0.5 });
    expect(admission.cpuRatePerS).toBe(Number.POSITIVE_INFINITY);
    for (let i = 0; i < 40; i++) admission.observe({ drained: 5000, elapsedMs: 250, busy: true, lagMs: 0, utilization: 0.5 });
    closeAt(250);
    for (let i = 0; i < 10; i++) admission.observe({ drained: 5000, elapsedMs: 250, busy: true, lagMs: 100, utilization: 0.99 });
    expect(admission.cpuRatePerS).toBeCloseTo(500);
  });

  it('reads the backlog (queued and in flight), acknowledged records and idle turns off the batching producer', async () => {
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const producer = new BatchingProducer({
      send: async (records) => {
        await held;
        return records.map((r, i) => ({ topic: r.topic, partition: 0, offset: BigInt(i) }));
      },
      lingerMs: 0,
      batchMaxRecords: 2,
      maxInFlight: 1,
      maxQueuedRecords: 100,
      timeoutMs: 5000,
      logger: pino({ level: 'silent' }),
    });
    const record = { topic: 't', key: null, value: Buffer.from('v') };
    const acks = [producer.produce([record, record]), producer.produce([record])];
    expect(producer.backlog).toBe(3);
    await new Promise((resolve) => setImmediate(resolve));
    // Two in flight, one queued: the backlog counts both.
    expect(producer.backlog).toBe(3);
    expect(producer.idleCount).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 20));
    // The oldest request waiting has waited the 20 ms since it was queued.
    expect(producer.oldestWaitMs).toBeGreaterThanOrEqual(15);
    release();
    await Promise.all(acks);
    expect(producer.backlog).toBe(0);
    expect(producer.acknowledgedRecords).toBe(3);
    expect(producer.idleCount).toBe(1);
    expect(producer.oldestWaitMs).toBe(0);
  });
});

/** Raw HTTP/1.1 over one socket: `requests` written at once (pipelined), the status lines read back. */
async function pipelined(port: number, requests: string[], expected: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
      const statuses = text.match(/HTTP\/1\.1 \d+/g) ?? [];
      if (statuses.length >= expected) {
        socket.destroy();
        resolve([text, ...statuses]);
      }
    });
    socket.on('error', reject);
    socket.write(requests.join(''));
  });
}

const postOrder = (id: number, path = '/v1/orders') => {
  const body = `{"orderId":"o-${id}"}`;
  return `POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
};

describe('the ingress’s listener in front of Fastify', () => {
  let server: Server | undefined;
  afterEach(() => server?.close());
  const listen = async (listener: RequestListener): Promise<number> => {
    server = createServer(listener);
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  };

  it('refuses a produce POST over the limit with 503, Retry-After and the error body, unread; probes and other paths pass', async () => {
    const seen: string[] = [];
    const handler: RequestListener = (req, res) => {
      seen.push(`${req.method} ${req.url}`);
      req.resume();
      req.on('end', () => res.end('{"ok":true}'));
    };
    let refused = 0;
    const port = await listen(
      admissionGate(handler, {
        admission: new Admission({ budgetMs: 1000, maxQueued: 10 }),
        source: { backlog: 10, oldestWaitMs: 0 },
        paths: ['/v1/orders'],
        headers: { 'x-content-type-options': 'nosniff' },
        refused: () => (refused += 1),
      }),
    );
    const [text, ...statuses] = await pipelined(
      port,
      [postOrder(1), 'GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n', postOrder(2, '/v1/orders?partial=true'), postOrder(3, '/v1/other'), 'GET /readyz HTTP/1.1\r\nhost: x\r\n\r\n'],
      5,
    );
    expect(statuses).toEqual(['HTTP/1.1 503', 'HTTP/1.1 200', 'HTTP/1.1 503', 'HTTP/1.1 200', 'HTTP/1.1 200']);
    expect(seen).toEqual(['GET /healthz', 'POST /v1/other', 'GET /readyz']);
    expect(refused).toBe(2);
    expect(text).toMatch(/retry-after: 1\r\n/i);
    expect(text).toMatch(/x-content-type-options: nosniff\r\n/i);
    expect(text).toMatch(/x-correlation-id: [\w-]+\r\n/i);
    expect(text).toContain('{"error":"SLUICE_OVERLOADED","message":');
  });

  it('refuses by the oldest waiting request’s wait, read off the source only while something waits', async () => {
    let reads = 0;
    const source = {
      backlog: 1,
      get oldestWaitMs() {
        reads += 1;
        return 1500;
      },
    };
    const handler: RequestListener = (req, res) => {
      req.resume();
      req.on('end', () => res.end('{"ok":true}'));
    };
    // Shedding: the queue's limit refused in the last interval.
    const admission = new Admission({ budgetMs: 1000, maxQueued: 10 });
    admission.admit(10);
    admission.observe({ drained: 0, elapsedMs: 250, busy: false, lagMs: 0 });
    const port = await listen(
      admissionGate(handler, {
        admission,
        source,
        paths: ['/v1/orders'],
        headers: {},
        refused: () => {},
      }),
    );
    const [, ...refused] = await pipelined(port, [postOrder(1)], 1);
    expect(refused).toEqual(['HTTP/1.1 503']);
    expect(reads).toBe(1);
    source.backlog = 0;
    const [, ...admitted] = await pipelined(port, [postOrder(2)], 1);
    expect(admitted).toEqual(['HTTP/1.1 200']);
    expect(reads).toBe(1);
  });

  it('bounds the requests one connection has in progress: pipelined ones wait in the socket, unparsed', async () => {
    const pending: (() => void)[] = [];
    let started = 0;
    const port = await listen(
      boundPipelining((req, res) => {
        started += 1;
        req.resume();
        pending.push(() => res.end('ok'));
      }, 4),
    );
    const socket = connect(port, '127.0.0.1');
    let answers = 0;
    socket.on('data', (chunk) => (answers += (chunk.toString('latin1').match(/HTTP\/1\.1 200/g) ?? []).length));
    // 200 requests in one write: one read, so Node parses them all before the pause can act.
    socket.write(Array.from({ length: 200 }, (_, i) => postOrder(i)).join(''));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(started).toBe(200);
    // Written separately after the first read: held in the socket until the connection is under the bound again.
    await new Promise<void>((resolve) => socket.write(Array.from({ length: 200 }, (_, i) => postOrder(1000 + i)).join(''), () => resolve()));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(started).toBe(200);
    while (answers < 400) {
      pending.splice(0).forEach((answer) => answer());
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(started).toBe(400);
    socket.destroy();
  });

  it('bounds the requests in progress over all connections: one that brings a request past the bound waits, resumed in turn as answers go out', async () => {
    const pending: (() => void)[] = [];
    let started = 0;
    const port = await listen(
      boundPipelining(
        (req, res) => {
          started += 1;
          req.resume();
          pending.push(() => res.end('ok'));
        },
        100,
        2,
      ),
    );
    const open = async (): Promise<{ write(text: string): Promise<void>; answers(): number; close(): void }> => {
      const socket = connect(port, '127.0.0.1');
      await new Promise((resolve) => socket.once('connect', resolve));
      let answers = 0;
      socket.on('data', (chunk) => (answers += (chunk.toString('latin1').match(/HTTP\/1\.1 200/g) ?? []).length));
      return {
        write: (text) => new Promise<void>((resolve) => socket.write(text, () => resolve())),
        answers: () => answers,
        close: () => socket.destroy(),
      };
    };
    const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 100));
    const [a, b] = [await open(), await open()];
    await a.write(postOrder(1));
    await settle();
    // The second request in progress reaches the bound: b, which brought it, is paused; a is not (yet).
    await b.write(postOrder(2));
    await settle();
    await a.write(postOrder(3));
    await settle();
    expect(started).toBe(3);
    // Both are paused now: what they send waits in the socket, unparsed.
    await b.write(postOrder(4));
    await a.write(postOrder(5));
    await settle();
    expect(started).toBe(3);
    while (a.answers() + b.answers() < 5) {
      pending.splice(0).forEach((answer) => answer());
      await settle();
    }
    expect(started).toBe(5);
    a.close();
    b.close();
  });
});
