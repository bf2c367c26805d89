import { readFileSync } from 'node:fs';
import { parse, plan, celEnv } from '@bufbuild/cel';
import { strings } from '@bufbuild/cel/ext';
import { PROJECT_ROOT } from '../core/config.ts';
import { createCodec, type AnyCodec } from '../core/formats/index.ts';
import { CompiledContract, type Rule } from '../rules/index.ts';
import { compileCel } from '../rules/cel.ts';
import { fieldShape, pruneShape, walkFields } from '../rules/fields.ts';
import { randomOrder } from '../tests/support/orders.ts';

/**
 * Where a rule's time goes, per event, in one process (no broker): the three
 * rules of the bench's rules stage (bench/rules.ts) each alone through
 * CompiledContract.run, and the parts under them: @bufbuild/cel's own `plan`
 * on the bindings, the program (rules/cel.ts) on them, the CEL_FIELD walk with
 * a no-op visitor. CPU µs per event (process.cpuUsage), median of 5 runs.
 *
 *   node bench/rules-profile.ts                 figures
 *   node --cpu-prof bench/rules-profile.ts      and a profile (bench/profile-summary.ts reads it)
 */

export const RULES_METADATA = { tags: { 'dev.sluice.orders.OrderPlaced.customerId': ['PII'], 'dev.sluice.orders.OrderPlaced.shippingCountry': ['PII'] } };

/** The bench's three WRITE rules: two CEL conditions on the message, one CEL_FIELD condition over the PII-tagged fields. */
export const BENCH_RULES: Rule[] = [
  { name: 'amountAndCurrency', kind: 'CONDITION', mode: 'WRITE', type: 'CEL', expr: "message.amount > 0 && message.currency in ['EUR', 'USD', 'GBP', 'CHF', 'JPY']" },
  { name: 'itemsAndId', kind: 'CONDITION', mode: 'WRITE', type: 'CEL', expr: "size(message.items) > 0 && message.orderId.startsWith('bench-')" },
  { name: 'piiBounded', kind: 'CONDITION', mode: 'WRITE', type: 'CEL_FIELD', tags: ['PII'], expr: 'size(value) <= 64' },
];

function cpuUsPer(events: number, fn: () => void): number {
  const runs: number[] = [];
  for (let r = 0; r < 5; r++) {
    const start = process.cpuUsage();
    fn();
    const used = process.cpuUsage(start);
    runs.push((used.user + used.system) / events);
  }
  return Number(runs.sort((a, b) => a - b)[2]!.toFixed(2));
}

/** CPU µs per event of CompiledContract.run('WRITE') over `orders`: the three rules together and each alone (bench/rules.ts's figure). */
export function ruleEvaluationUs(codec: AnyCodec, orders: readonly unknown[], rounds = 10): { total: number; perRule: Record<string, number> } {
  const contractOf = (rules: Rule[]) => new CompiledContract({ subject: 's-value', version: 1, id: 1, codec, metadata: RULES_METADATA, ruleSet: { domainRules: rules } });
  const measure = (contract: CompiledContract): number => {
    const each = () => {
      for (let r = 0; r < rounds; r++) for (const o of orders) contract.run('WRITE', o);
    };
    each();
    return cpuUsPer(orders.length * rounds, each);
  };
  const perRule: Record<string, number> = {};
  for (const rule of BENCH_RULES) perRule[rule.name] = measure(contractOf([rule]));
  return { total: measure(contractOf(BENCH_RULES)), perRule };
}

function main(): void {
  const schema = readFileSync(`${PROJECT_ROOT}/schemas/OrderPlaced.avsc`, 'utf8');
  const codec = createCodec({ schemaType: 'AVRO', schema, references: [] });
  const orders = Array.from({ length: 2000 }, (_, i) => randomOrder({ orderId: `bench-${i}` }));
  const rounds = Number(process.env.RULES_PROFILE_ROUNDS ?? 20);
  const events = orders.length * rounds;
  const each = (fn: (order: unknown) => void) => () => {
    for (let r = 0; r < rounds; r++) for (const o of orders) fn(o);
  };
  const contractOf = (rules: Rule[]) => new CompiledContract({ subject: 's-value', version: 1, id: 1, codec, metadata: RULES_METADATA, ruleSet: { domainRules: rules } });
  const figures: Record<string, number> = {};
  const all = contractOf(BENCH_RULES);
  for (let w = 0; w < 3; w++) each((o) => all.run('WRITE', o))();
  figures['three rules, CompiledContract.run'] = cpuUsPer(
    events,
    each((o) => all.run('WRITE', o)),
  );
  for (const rule of BENCH_RULES) {
    const one = contractOf([rule]);
    figures[`${rule.name} (${rule.type}), CompiledContract.run`] = cpuUsPer(
      events,
      each((o) => one.run('WRITE', o)),
    );
  }
  const noop = contractOf([{ ...BENCH_RULES[0]!, expr: 'true' }]);
  figures['no-op rule `true`, CompiledContract.run'] = cpuUsPer(
    events,
    each((o) => noop.run('WRITE', o)),
  );
  const env = celEnv({ funcs: strings });
  for (const rule of BENCH_RULES.slice(0, 2)) {
    const slow = plan(env, parse(rule.expr!)) as (b: Record<string, unknown>) => unknown;
    figures[`${rule.name}: @bufbuild/cel plan alone`] = cpuUsPer(
      events,
      each((o) => slow({ message: o })),
    );
    const program = compileCel(rule.expr!);
    figures[`${rule.name}: rules/cel.ts program`] = cpuUsPer(
      events,
      each((o) => program.evaluate({ message: o })),
    );
  }
  const selected = pruneShape(fieldShape(codec, RULES_METADATA), (f) => f.tags.has('PII'))!;
  figures['CEL_FIELD walk, no-op visitor'] = cpuUsPer(
    events,
    each((o) => walkFields(selected, o, (_field, _type, value) => value, false)),
  );
  for (const [name, us] of Object.entries(figures)) process.stdout.write(`${name.padEnd(58)} ${us} µs/event\n`);
}

if (import.meta.main) main();
