import { readFileSync } from 'node:fs';
import { PROJECT_ROOT } from '../core/config.ts';
import { median } from './common.ts';

/**
 * The bench's three WRITE rules (bench/rules-profile.ts) of another checkout against this one's, in one process:
 * each checkout's CompiledContract over the same orders, all three rules and each alone, rounds alternated, CPU µs
 * per event (process.cpuUsage), medians. For a shared, busy machine, where two ingress processes side by side
 * (bench/ingress-ab.ts) drown a sub-microsecond difference in noise: here both sides see the same load at the same
 * moment. Also runWriteRules, the ingress's whole per-request rules step, over the same orders as the ingress holds
 * them (JSON.parse of its bodies): batches of 100 and single events. Not part of `npm run bench`.
 *
 *   node bench/rules-ab.ts <other checkout> [--rounds 15]
 */

interface Runner {
  run(mode: 'WRITE', message: unknown): unknown;
}

/** What the ingress runs per request: runWriteRules over the request's events (rules/subject-contracts.ts). */
type WriteRules = (contract: Runner, events: readonly unknown[], codec: unknown) => unknown;

async function contractsOf(root: string): Promise<{ root: string; all: Runner; each: Runner[]; writeRules: WriteRules; codec: unknown; orders: (n: number) => unknown[] }> {
  const rules = (await import(`${root}/rules/index.ts`)) as typeof import('../rules/index.ts');
  const formats = (await import(`${root}/core/formats/index.ts`)) as typeof import('../core/formats/index.ts');
  const profile = (await import(`${root}/bench/rules-profile.ts`)) as typeof import('./rules-profile.ts');
  const support = (await import(`${root}/tests/support/orders.ts`)) as typeof import('../tests/support/orders.ts');
  const codec = formats.createCodec({ schemaType: 'AVRO', schema: readFileSync(`${PROJECT_ROOT}/schemas/OrderPlaced.avsc`, 'utf8'), references: [] });
  const contract = (domainRules: typeof profile.BENCH_RULES) =>
    new rules.CompiledContract({ subject: 's-value', version: 1, id: 1, codec, metadata: profile.RULES_METADATA, ruleSet: { domainRules } });
  return {
    root,
    all: contract(profile.BENCH_RULES),
    each: profile.BENCH_RULES.map((rule) => contract([rule])),
    writeRules: rules.runWriteRules as unknown as WriteRules,
    codec,
    orders: (n) => Array.from({ length: n }, (_, i) => support.randomOrder({ orderId: `bench-${i}` })),
  };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const other = args[0];
  if (other === undefined || other.startsWith('--')) throw new Error('usage: node bench/rules-ab.ts <other checkout> [--rounds n]');
  const roundsAt = args.indexOf('--rounds');
  const rounds = roundsAt >= 0 ? Number(args[roundsAt + 1]) : 15;
  const sides = [await contractsOf(other), await contractsOf(PROJECT_ROOT)];
  const orders = sides[1]!.orders(2000);
  const passes = 5;
  const cpuUs = (runner: Runner): number => {
    const start = process.cpuUsage();
    for (let p = 0; p < passes; p++) for (const o of orders) runner.run('WRITE', o);
    const used = process.cpuUsage(start);
    return (used.user + used.system) / (orders.length * passes);
  };
  // As the ingress holds them: parsed from the request bodies, a batch an array of 100 (bench/common.ts's BATCH_SIZE).
  const batches = Array.from({ length: orders.length / 100 }, (_, b) => JSON.parse(JSON.stringify(orders.slice(b * 100, b * 100 + 100))) as unknown[]);
  const singles = orders.map((o) => [JSON.parse(JSON.stringify(o)) as unknown]);
  const requestsUs = (side: (typeof sides)[number], requests: unknown[][]): number => {
    const start = process.cpuUsage();
    for (let p = 0; p < passes; p++) for (const events of requests) side.writeRules(side.all, events, side.codec);
    const used = process.cpuUsage(start);
    return (used.user + used.system) / (orders.length * passes);
  };
  const figures = new Map<string, number[]>();
  const record = (name: string, us: number) => figures.set(name, [...(figures.get(name) ?? []), us]);
  for (let w = 0; w < 3; w++)
    for (const side of sides) {
      [side.all, ...side.each].forEach(cpuUs);
      requestsUs(side, batches);
      requestsUs(side, singles);
    }
  for (let r = 0; r < rounds; r++)
    for (const side of sides) {
      record(`${side.root} three rules`, cpuUs(side.all));
      side.each.forEach((runner, i) => record(`${side.root} rule ${i + 1} alone`, cpuUs(runner)));
      record(`${side.root} runWriteRules, batches of 100`, requestsUs(side, batches));
      record(`${side.root} runWriteRules, single events`, requestsUs(side, singles));
    }
  for (const [name, values] of figures) process.stdout.write(`${name.padEnd(48)} ${median(values).toFixed(3)} µs/event\n`);
}

if (import.meta.main) await main();
