import { RuleViolationError, type RuleViolation } from '../core/errors.ts';
import { stringifyJson } from '../core/json.ts';
import type { OutgoingRecord, RecordHeaders } from '../kafka/index.ts';
import { ruleHeaders, type RuleFailure, type RuleResults, type SubjectBinding } from '../rules/index.ts';
import type { PreparedProduce } from './idempotency.ts';

/** What this file needs of a route (routes.ts's RouteBinding has it; routes.ts imports this file, not the other way). */
export interface RuleRoute extends SubjectBinding {
  readonly route: { readonly topic: string; readonly key: string };
}

/** How routes.ts turns events into records and which headers they carry: passed in, so this file does not import it. */
export interface RecordBuilder {
  records(events: unknown[]): OutgoingRecord[];
  readonly headers: RecordHeaders;
}

/**
 * The WRITE rules of each route's subject, enforced at the HTTP edge. After
 * schema validation each event runs its version's rules
 * (rules/subject-contracts.ts's runWriteRules, which the workers run on their
 * outputs too): a failure whose action is ERROR refuses the event (422 naming
 * rule, subject, version and field); one whose action is DLQ sends the event,
 * as the caller sent it, to the rule's dead-letter topic with `__rule.*`
 * headers instead of the route's topic; transforms (masking) replace the
 * event before it is encoded. Each route's contract is kept current by a
 * SubjectContracts (rules/), so a rule registered while the ingress runs takes
 * effect within seconds.
 */

export function ruleViolation(failure: RuleFailure, index?: number): RuleViolation {
  return {
    rule: failure.rule,
    subject: failure.subject,
    version: failure.version,
    reason: failure.reason,
    ...(failure.field !== undefined ? { field: failure.field } : {}),
    ...(index !== undefined ? { index } : {}),
  };
}

/** The 422 for an all-or-nothing request with a refused event: nothing is written. */
export function ruleRefusal(refused: ReadonlyMap<number, RuleFailure>, batch: boolean, total: number): RuleViolationError {
  const violations = [...refused].map(([index, failure]) => ruleViolation(failure, batch ? index : undefined));
  const first = violations[0]!;
  const where = `rule '${first.rule}' of ${first.subject} version ${first.version}${first.field !== undefined ? ` on field ${first.field}` : ''}: ${first.reason}`;
  return new RuleViolationError(violations, batch ? `${refused.size} of ${total} events broke a rule, so none was produced; first [${first.index}]: ${where}` : where);
}

/** The record that carries a dead-lettered event: its JSON as sent, and headers naming the rule, subject, version, route topic and reason (Confluent's `__rule.*`). */
export function deadLetterRecord(failure: RuleFailure, event: unknown, routeTopic: string, headers: RecordHeaders, key: Buffer | null): OutgoingRecord {
  return {
    topic: failure.dlqTopic!,
    key,
    // core/json.ts's writer, as every other Sluice output: an Avro long beyond 2^53 (a bigint) stays an exact number.
    value: Buffer.from(stringifyJson(event), 'utf8'),
    headers: [...headers.filter(([name]) => name !== 'content-type'), ['content-type', Buffer.from('application/json')], ...ruleHeaders(failure, routeTopic)],
  };
}

/** Where a dead-lettered event went, in the answer for its index. */
interface DeadLetterAnswer {
  topic: string;
  partition: number;
  offset: string;
  deadLettered: { rule: string; subject: string; version: number; reason: string };
}

/**
 * The produce of a request whose events ran WRITE rules: the kept events
 * (transformed) to the route's topic, the dead-lettered ones to their rule's
 * topic, in one produce; the answer has a result per event. With `partial`,
 * an event the schema or an ERROR rule refuses is reported at its index (400
 * or 422) and the rest are written; without it, the caller has already
 * refused the whole request when any event was (checkEvents, ruleRefusal).
 */
export function prepareWithRules(binding: RuleRoute, events: unknown[], rules: RuleResults, build: RecordBuilder, options: { batch: boolean; partial: boolean }): PreparedProduce {
  const invalid = options.partial ? events.map((event) => binding.codec.validate(event)) : undefined;
  const kept: number[] = [];
  const dead: number[] = [];
  events.forEach((_e, i) => {
    if ((invalid?.[i]?.length ?? 0) > 0 || rules.refused.has(i)) return;
    (rules.deadLettered.has(i) ? dead : kept).push(i);
  });
  const main = build.records(kept.map((i) => rules.events[i]));
  const headers = build.headers;
  const letters = dead.map((i) => {
    const keyValue = (events[i] as Record<string, unknown>)[binding.route.key];
    return deadLetterRecord(rules.deadLettered.get(i)!, events[i], binding.route.topic, headers, keyValue === null || keyValue === undefined ? null : Buffer.from(String(keyValue), 'utf8'));
  });
  return {
    records: [...main, ...letters],
    answer(acks) {
      const results: unknown[] = new Array(events.length);
      kept.forEach((index, i) => (results[index] = { ...(options.partial ? { index, status: 200 } : {}), ...acks[i]!, schemaId: binding.schemaId }));
      dead.forEach((index, i) => {
        const failure = rules.deadLettered.get(index)!;
        const answer: DeadLetterAnswer = { ...acks[kept.length + i]!, deadLettered: { rule: failure.rule, subject: failure.subject, version: failure.version, reason: failure.reason } };
        results[index] = options.partial ? { index, status: 200, ...answer } : answer;
      });
      if (!options.partial) return { status: 200, body: options.batch ? { results } : results[0] };
      invalid!.forEach((found, index) => {
        if (found.length > 0) {
          const first = found[0]!;
          results[index] = { index, status: 400, error: 'SLUICE_VALIDATION_FAILED', message: `${first.path || '(root)'}: ${first.message}`, path: first.path, errors: found };
        } else if (rules.refused.has(index)) {
          const violation = ruleViolation(rules.refused.get(index)!);
          results[index] = { index, status: 422, error: 'SLUICE_RULE_FAILED', message: `rule '${violation.rule}': ${violation.reason}`, ...violation };
        }
      });
      const failed = events.length - kept.length - dead.length;
      return { status: 207, body: { produced: kept.length + dead.length, failed, results } };
    },
  };
}
