import type { AnyCodec } from '../core/formats/index.ts';
import type { Logger } from '../core/logger.ts';
import type { RegistryClient } from '../core/registry-client.ts';
import { CompiledContract, type RuleFailure, type RuleVerdict } from './engine.ts';
import { RULE_HEADERS, type Metadata, type RuleSet } from './types.ts';

/**
 * The data contract of a schema a service writes (the ingress's routes, a
 * worker's output) or reads with (a worker's input), kept current from the
 * registry, and the WRITE rules run on the events it writes. The ingress
 * (producers/contract-rules.ts) and the workers (consumers/contract-rules.ts)
 * use these same objects, so a rule means the same at the HTTP edge and in
 * a worker's outputs.
 *
 * Rules change through the registry: a version registered with new rules for
 * the same schema is a new id. Every CONTRACT_REFRESH_MS each binding asks the
 * registry which version its schema is under the subject's current contract
 * (the look-up a bare registration would make) and adopts its id and rules, so
 * a rule added or removed takes effect within seconds, without a restart.
 */

export const CONTRACT_REFRESH_MS = 2_000;

/** A schema under a subject, as the service holds it (from the topology). */
export interface SubjectBinding {
  readonly subject: string;
  readonly schemaId: number;
  readonly codec: Pick<AnyCodec, 'schemaType' | 'validate'>;
  readonly schemaText?: string;
}

/** A binding's current contract: the id its records are framed with and the compiled rules of that version. */
export interface SubjectContract {
  schemaId: number;
  /** The version of the subject that id is (undefined until the registry answered). */
  version?: number;
  contract: CompiledContract | undefined;
}

interface LookupAnswer {
  id: number;
  version: number;
  metadata?: Metadata;
  ruleSet?: RuleSet;
}

/** Each binding's contract, kept current by polling the registry. */
export class SubjectContracts<B extends SubjectBinding = SubjectBinding> {
  readonly #registry: RegistryClient;
  readonly #log: Logger;
  readonly #current = new Map<B, SubjectContract>();
  #timer: NodeJS.Timeout | undefined;

  constructor(registry: RegistryClient, bindings: readonly B[], log: Logger) {
    this.#registry = registry;
    this.#log = log;
    for (const binding of bindings) this.#current.set(binding, { schemaId: binding.schemaId, contract: undefined });
  }

  /** Loads every binding's contract once, then keeps them current every `intervalMs`. */
  async start(intervalMs = CONTRACT_REFRESH_MS): Promise<void> {
    await this.refresh();
    this.#timer = setInterval(() => void this.refresh(), intervalMs).unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  of(binding: B): SubjectContract {
    return this.#current.get(binding) ?? { schemaId: binding.schemaId, contract: undefined };
  }

  async refresh(): Promise<void> {
    await Promise.all([...this.#current.keys()].map((binding) => this.#refreshOne(binding)));
  }

  async #refreshOne(binding: B): Promise<void> {
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
    if (current && current.schemaId === answer.id && current.version === answer.version && (current.contract !== undefined || answer.ruleSet === undefined)) return;
    let contract: CompiledContract | undefined;
    try {
      contract =
        answer.ruleSet === undefined
          ? undefined
          : new CompiledContract({ subject: binding.subject, version: answer.version, id: answer.id, codec: binding.codec as AnyCodec, metadata: answer.metadata, ruleSet: answer.ruleSet });
    } catch (error) {
      this.#log.warn({ err: error, subject: binding.subject, version: answer.version }, 'the registry holds rules this service cannot run; keeping the current rules');
      return;
    }
    this.#current.set(binding, { schemaId: answer.id, version: answer.version, contract });
    this.#log.info({ subject: binding.subject, version: answer.version, schemaId: answer.id, rules: answer.ruleSet?.domainRules?.length ?? 0 }, 'contract updated');
  }
}

/** What the WRITE rules made of a list of events. */
export interface RuleResults {
  /** The events to encode, transformed; an event refused or dead-lettered keeps its place with its original value. */
  readonly events: unknown[];
  /** Index → the rule that refused the event (action ERROR). */
  readonly refused: ReadonlyMap<number, RuleFailure>;
  /** Index → the rule that dead-letters the event (action DLQ). */
  readonly deadLettered: ReadonlyMap<number, RuleFailure>;
}

/**
 * The failures of a request where every event passed, shared: two Maps per request were most of what a single event's
 * run allocated. Only settleVerdict writes, and it replaces this with a Map of the request's own first.
 */
const NO_FAILURES: ReadonlyMap<number, RuleFailure> = new Map();

/** RuleResults while the rules run. */
interface Settling {
  readonly events: unknown[];
  refused: ReadonlyMap<number, RuleFailure>;
  deadLettered: ReadonlyMap<number, RuleFailure>;
}

/**
 * Runs the contract's WRITE rules on every event. A transformed event is
 * validated again: a transform that breaks the schema (masking an int with a
 * string) refuses the event as that rule's failure instead of failing its
 * encoding. Synchronous unless a JSONATA rule runs (then a Promise): the
 * ingress's request with CEL rules only takes no extra turn of the event loop.
 */
export function runWriteRules(contract: CompiledContract, events: readonly unknown[], codec: Pick<AnyCodec, 'validate'>): RuleResults | Promise<RuleResults> {
  const results: Settling = { events: events.slice(), refused: NO_FAILURES, deadLettered: NO_FAILURES };
  const check = contract.checker('WRITE');
  for (let i = 0; i < events.length; i++) {
    // The usual event (every rule passed, none transformed it) has no verdict and stays as it is in `results`.
    const verdict = check(events[i]);
    if (verdict === undefined) continue;
    if (verdict instanceof Promise) return finishAsync(contract, events, codec, results, i, verdict);
    settleVerdict(contract, events, codec, results, i, verdict);
  }
  return results;
}

async function finishAsync(
  contract: CompiledContract,
  events: readonly unknown[],
  codec: Pick<AnyCodec, 'validate'>,
  results: Settling,
  from: number,
  pending: Promise<RuleVerdict>,
): Promise<RuleResults> {
  settleVerdict(contract, events, codec, results, from, await pending);
  for (let i = from + 1; i < events.length; i++) {
    const run = contract.run('WRITE', events[i]);
    settleVerdict(contract, events, codec, results, i, run instanceof Promise ? await run : run);
  }
  return results;
}

/** Records event `i`'s verdict in `results`. */
function settleVerdict(contract: CompiledContract, events: readonly unknown[], codec: Pick<AnyCodec, 'validate'>, results: Settling, i: number, verdict: RuleVerdict): void {
  results.events[i] = verdict.message;
  if (verdict.ok && verdict.message !== events[i]) {
    const broken = codec.validate(verdict.message)[0];
    if (broken)
      results.refused = withFailure(results.refused, i, {
        rule: contract.lastTransform('WRITE') ?? '(transform)',
        subject: contract.subject,
        version: contract.version,
        mode: 'WRITE',
        action: 'ERROR',
        reason: `the transformed event breaks the schema: ${broken.path || '(root)'}: ${broken.message}`,
        field: broken.path,
      });
  }
  if (verdict.ok) return;
  if (verdict.failure.action === 'DLQ') results.deadLettered = withFailure(results.deadLettered, i, verdict.failure);
  else results.refused = withFailure(results.refused, i, verdict.failure);
}

/** `failures` with event `i`'s failure added: a Map of the request's own in place of the shared empty one. */
function withFailure(failures: ReadonlyMap<number, RuleFailure>, i: number, failure: RuleFailure): Map<number, RuleFailure> {
  const own = failures === NO_FAILURES ? new Map<number, RuleFailure>() : (failures as Map<number, RuleFailure>);
  return own.set(i, failure);
}

/** The `__rule.*` headers (Confluent's, plus version and field) naming the rule that sent a record to a dead-letter topic, and the topic it was bound for. */
export function ruleHeaders(failure: { rule: string; mode: string; subject: string; version: number; reason: string; field?: string }, topic: string): [string, Buffer][] {
  return [
    [RULE_HEADERS.name, Buffer.from(failure.rule)],
    [RULE_HEADERS.mode, Buffer.from(failure.mode)],
    [RULE_HEADERS.subject, Buffer.from(failure.subject)],
    [RULE_HEADERS.version, Buffer.from(String(failure.version))],
    ...(failure.field !== undefined ? ([[RULE_HEADERS.field, Buffer.from(failure.field)]] as [string, Buffer][]) : []),
    [RULE_HEADERS.topic, Buffer.from(topic)],
    [RULE_HEADERS.exception, Buffer.from(failure.reason)],
  ];
}
