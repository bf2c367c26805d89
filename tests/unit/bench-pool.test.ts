import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { eventPool } from '../../bench/common.ts';
import { BENCH_RULES, RULES_METADATA } from '../../bench/rules-profile.ts';
import { PROJECT_ROOT } from '../../core/config.ts';
import { createCodec } from '../../core/formats/index.ts';
import { CompiledContract, type RuleVerdict } from '../../rules/index.ts';

/**
 * The rules stage (bench/rules.ts, bench/ingress-ab.ts --rules-ab) times the ingress with the bench's three WRITE rules
 * on the pool's bodies: an event of the pool that breaks one is a refused batch of 100 in every round, counted against
 * the rules side's events/s. Random prices once rounded to 0 made such an order (amount 0) in about one pool in 50.
 */

describe('the bench pool', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('passes the bench rules, even where every random draw is at its lowest or highest', () => {
    const codec = createCodec({ schemaType: 'AVRO', schema: readFileSync(`${PROJECT_ROOT}/schemas/OrderPlaced.avsc`, 'utf8'), references: [] });
    const contract = new CompiledContract({ subject: 'orders-value', version: 1, id: 1, codec, metadata: RULES_METADATA, ruleSet: { domainRules: BENCH_RULES } });
    for (const draw of [0, 0.999_999_999, 0.5]) {
      vi.spyOn(Math, 'random').mockReturnValue(draw);
      const pool = eventPool(200);
      vi.restoreAllMocks();
      const events = pool.batchBodies.flatMap((body) => JSON.parse(body) as unknown[]);
      expect(events).toHaveLength(200);
      for (const event of events) {
        expect(codec.validate(event), JSON.stringify(event)).toEqual([]);
        expect((contract.run('WRITE', event) as RuleVerdict).ok, JSON.stringify(event)).toBe(true);
      }
    }
  });
});
