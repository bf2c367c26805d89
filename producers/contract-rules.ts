import { RuleViolationError, type RuleViolation } from '../core/errors.ts';
import type { AnyCodec } from '../core/formats/index.ts';
import type { Logger } from '../core/logger.ts';
import type { RegistryClient } from '../core/registry-client.ts';
import type { OutgoingRecord, RecordHeaders } from '../kafka/index.ts';
import { CompiledContract, RULE_HEADERS, type Metadata, type RuleFailure, type RuleSet } from '../rules/index.ts';
import type { PreparedProduce } from './idempotency.ts';

/** What this file needs of a route (routes.ts's RouteBinding has it; routes.ts imports this file, not the other way). */
export interface RuleRoute {
  readonly route: { readonly topic: string; readonly key: string };
  readonly subject: string;
  readonly schemaId: number;
  readonly codec: Pick<AnyCodec, 'schemaType' | 'validate'>;
  readonly schemaText?: string;
}

/** How routes.ts turns events into records and which headers they carry: passed in, so this file does not import it. */
export interface RecordBuilder {
  records(events: unknown[]): OutgoingRecord[];
  readonly headers: RecordHeaders;
}

/**
 * The WRITE rules of each route's subject, enforced at the HTTP edge. After
 * schema validation each event runs its version's rules: a failure whose
 * action is ERROR refuses the event (422 naming rule, subject, version and
 * field); one whose action is DLQ sends the event, as the caller sent it, to
 * the rule's dead-letter topic with `__rule.*` headers instead of the route's
 * topic; transforms (masking) replace the event before it is encoded.
 *
 * Rules change through the registry: a version registered with new rules for
 * the same schema is a new id. Every REFRESH_MS each route asks the registry
 * which version its schema is under the subject's current contract (the
 * look-up a bare registration would make) and adopts its id and rules, so a
 * rule added or removed takes effect within seconds, without a restart.
 */

export const CONTRACT_REFRESH_MS = 2_000;

/** A route's current contract: the id its records are framed with and the compiled rules of that version. */
export interface RouteContract {
  schemaId: number;
  contract: CompiledContract | undefined;
}

interface LookupAnswer {
  id: number;
  version: number;
  metadata?: Metadata;
  ruleSet?: RuleSet;
}

/** Each route's contract, kept current by polling the registry. */
export class RouteContracts {
  readonly #registry: RegistryClient;
  readonly #log: Logger;
  readonly #current = new Map<RuleRoute, RouteContract>();
  #timer: NodeJS.Timeout | undefined;

  constructor(registry: RegistryClient, bindings: readonly RuleRoute[], log: Logger) {
    this.#registry = registry;
    this.#log = log;
    for (const binding of bindings) this.#current.set(binding, { schemaId: binding.schemaId, contract: undefined });
  }

  /** Loads every route's contract once, then keeps them current every `intervalMs`. */
  async start(intervalMs = CONTRACT_REFRESH_MS): Promise<void> {
    await this.refresh();
    this.#timer = setInterval(() => void this.refresh(), intervalMs).unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  of(binding: RuleRoute): RouteContract {
    return this.#current.get(binding) ?? { schemaId: binding.schemaId, contract: undefined };
  }

  async refresh(): Promise<void> {
    await Promise.all([...this.#current.keys()].map((binding) => this.#refreshOne(binding)));
  }

  async #refreshOne(binding: RuleRoute): Promise<void> {
    const text = binding.schemaText;
    if (text === undefined) return;
    let answer: LookupAnswer;
    try {
      answer = await this.#registry.request<LookupAnswer>('POST', `/subjects/${encodeURIComponent(binding.subject)}`, {
        schema: text,
        ...(binding.codec.schemaType !== 'AVRO' ? { schemaType: binding.codec.schemaType } : {}),
      });
    } catch (error) {
      // The registry down or the version gone: keep enforcing what was last known.
      this.#log.debug({ err: error, subject: binding.subject }, 'contract refresh failed; keeping the current rules');
      return;
    }
    const current = this.#current.get(binding);
    if (current && current.schemaId === answer.id && (current.contract !== undefined || answer.ruleSet === undefined)) return;
    let contract: CompiledContract | undefined;
    try {
      contract =
        answer.ruleSet === undefined
          ? undefined
          : new CompiledContract({ subject: binding.subject, version: answer.version, id: answer.id, codec: binding.codec as AnyCodec, metadata: answer.metadata, ruleSet: answer.ruleSet });
    } catch (error) {
      this.#log.warn({ err: error, subject: binding.subject, version: answer.version }, 'the registry holds rules this ingress cannot run; keeping the current rules');
      return;
    }
    this.#current.set(binding, { schemaId: answer.id, contract });
    this.#log.info({ subject: binding.subject, version: answer.version, schemaId: answer.id, rules: answer.ruleSet?.domainRules?.length ?? 0 }, 'route contract updated');
  }
}

/** What the WRITE rules made of a request's events. */
export interface RuleResults {
  /** The events to encode, transformed; an event refused or dead-lettered keeps its place with its original value. */
  readonly events: unknown[];
  /** Index → the rule that refused the event (action ERROR). */
  readonly refused: Map<number, RuleFailure>;
  /** Index → the rule that dead-letters the event (action DLQ). */
  readonly deadLettered: Map<number, RuleFailure>;
}

/**
 * Runs the contract's WRITE rules on every event (synchronously unless a
 * JSONATA rule runs). A transformed event is validated again: a transform
 * that breaks the schema (masking an int with a string) refuses the event as
 * that rule's failure instead of failing its encoding.
 */
export async function runWriteRules(contract: CompiledContract, events: readonly unknown[], codec: Pick<AnyCodec, 'validate'>): Promise<RuleResults> {
  const out: unknown[] = new Array(events.length);
  const refused = new Map<number, RuleFailure>();
  const deadLettered = new Map<number, RuleFailure>();
  for (let i = 0; i < events.length; i++) {
    const run = contract.run('WRITE', events[i]);
    const verdict = run instanceof Promise ? await run : run;
    out[i] = verdict.message;
    if (verdict.ok && verdict.message !== events[i]) {
      const broken = codec.validate(verdict.message)[0];
      if (broken)
        refused.set(i, {
          rule: contract.lastTransform('WRITE') ?? '(transform)',
          subject: contract.subject,
          version: contract.version,
          mode: 'WRITE',
          action: 'ERROR',
          reason: `the transformed event breaks the schema: ${broken.path || '(root)'}: ${broken.message}`,
          field: broken.path,
        });
    }
    if (verdict.ok) continue;
    (verdict.failure.action === 'DLQ' ? deadLettered : refused).set(i, verdict.failure);
  }
  return { events: out, refused, deadLettered };
}

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
export function ruleRefusal(refused: Map<number, RuleFailure>, batch: boolean, total: number): RuleViolationError {
  const violations = [...refused].map(([index, failure]) => ruleViolation(failure, batch ? index : undefined));
  const first = violations[0]!;
  const where = `rule '${first.rule}' of ${first.subject} version ${first.version}${first.field !== undefined ? ` on field ${first.field}` : ''}: ${first.reason}`;
  return new RuleViolationError(violations, batch ? `${refused.size} of ${total} events broke a rule, so none was produced; first [${first.index}]: ${where}` : where);
}

/** The record that carries a dead-lettered event: its JSON as sent, and headers naming the rule, subject, version, route topic and reason (Confluent's `__rule.*`). */
export function deadLetterRecord(failure: RuleFailure, event: unknown, routeTopic: string, headers: RecordHeaders, key: Buffer | null): OutgoingRecord {
  const ruleHeaders: RecordHeaders = [
    [RULE_HEADERS.name, Buffer.from(failure.rule)],
    [RULE_HEADERS.mode, Buffer.from(failure.mode)],
    [RULE_HEADERS.subject, Buffer.from(failure.subject)],
    [RULE_HEADERS.version, Buffer.from(String(failure.version))],
    [RULE_HEADERS.topic, Buffer.from(routeTopic)],
    [RULE_HEADERS.exception, Buffer.from(failure.reason)],
  ];
  return {
    topic: failure.dlqTopic!,
    key,
    value: Buffer.from(
      JSON.stringify(event, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)),
      'utf8',
    ),
    headers: [...headers.filter(([name]) => name !== 'content-type'), ['content-type', Buffer.from('application/json')], ...ruleHeaders],
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
