import { parseJson, requireJsonDepth } from '../core/json.ts';
import { eventPool, median } from './common.ts';

/**
 * What the JSON pre-scan (core/json.ts: depth bound and unsafe-number check, one pass) costs per body, against
 * the regular expression it replaced (the unsafe-number check alone) and JSON.parse, on a small and an order event
 * and a batch of 100 orders. CPU µs per call (process.cpuUsage), median of 9 alternated rounds so a noisy neighbour hits
 * every contender alike. `node bench/json-scan.ts`; not part of `npm run bench`.
 */

// The fast-path check of core/json.ts before the depth pre-scan (at c41e8ff).
const MAYBE_UNSAFE_NUMBER = /(?:^|[[:,])\s*-?(?:\d{16,}|\d+(?:\.\d+)?[eE][+-]?\d{3})/;

const contenders: Record<string, (text: string) => unknown> = {
  'regex (before)': (text) => MAYBE_UNSAFE_NUMBER.test(text),
  'pre-scan (now)': (text) => requireJsonDepth(text, 128),
  'JSON.parse': (text) => JSON.parse(text),
  'parseJson (now: pre-scan + parse)': (text) => parseJson(text, 128),
};

const pool = eventPool(100);
const small = { orderId: 'o-7f3c2a9e-1b4d-4c8a-9e2f', customerId: 'c-12345', items: [{ sku: 'SKU-1', quantity: 2, unitPrice: 9.75 }], amount: 19.5, currency: 'EUR', placedAt: 1767225600000 };
const bodies: Record<string, string> = { 'small event': JSON.stringify(small), 'order event': pool.singleBodies[0]!, 'batch of 100': pool.batchBodies[0]! };

function cpuMicros(fn: (text: string) => unknown, text: string, calls: number): number {
  const start = process.cpuUsage();
  for (let i = 0; i < calls; i++) fn(text);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / calls;
}

const rounds: Record<string, number[]> = {};
for (let round = 0; round < 9; round++) {
  for (const [name, fn] of Object.entries(contenders)) {
    for (const [what, text] of Object.entries(bodies)) {
      // Each contender gets its own loop function, so V8 inlines its call (one shared loop would go megamorphic).
      const loop = new Function('fn', 'text', 'calls', 'measure', 'return measure(fn, text, calls);') as (...args: unknown[]) => number;
      (rounds[`${what}: ${name}`] ??= []).push(loop(fn, text, what === 'batch of 100' ? 1_000 : 100_000, cpuMicros));
    }
  }
}
console.log(
  `bodies: ${Object.entries(bodies)
    .map(([what, text]) => `${what} ${text.length} B`)
    .join(', ')}`,
);
for (const [name, values] of Object.entries(rounds)) console.log(`${name.padEnd(50)} ${median(values).toFixed(3)} µs`);
