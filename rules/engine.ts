import type { AnyCodec } from '../core/formats/index.ts';
import type { CelBindings, CelProgram } from './cel.ts';
import { compileWalk, fieldShape, pruneShape, type FieldInfo, type FieldVisitor, type Shape } from './fields.ts';
import type { JsonataProgram } from './jsonata.ts';
import { DLQ_TOPIC_PARAM, type Metadata, type Rule, type RuleSet, type RunMode } from './types.ts';
import { compileExpression, normalizeRuleSet, validateRuleSet } from './validate.ts';

/**
 * Runs a schema version's rules as Confluent's serializers do
 * (Serde.executeRules): for a run mode, the rules whose own mode covers it
 * (WRITEREAD covers WRITE and READ, UPDOWN covers UPGRADE and DOWNGRADE), in
 * order (READ and DOWNGRADE in reverse), disabled ones skipped. A CONDITION
 * fails when its value is false, a TRANSFORM when it gives nothing, any rule
 * when it throws (its error text is the reason). Then the rule's action:
 * onSuccess (default NONE) or onFailure (default ERROR), a pair "a,b" read
 * by mode (write/upgrade first). NONE goes on; ERROR and DLQ stop the run and
 * the verdict says which rule, why, where (the field, for CEL_FIELD) and, for
 * DLQ, the topic (`params["dlq.topic"]`, else the metadata property).
 *
 * Everything is compiled once per version (CompiledContract), expressions
 * once per text; CEL runs synchronously, so a run without JSONATA rules
 * returns its verdict without a Promise.
 */

export interface ContractVersion {
  readonly subject: string;
  readonly version: number;
  readonly id: number;
  readonly codec: AnyCodec;
  readonly metadata?: Metadata;
  readonly ruleSet?: RuleSet;
}

export interface RuleFailure {
  readonly rule: string;
  readonly subject: string;
  readonly version: number;
  readonly mode: RunMode;
  readonly action: 'ERROR' | 'DLQ';
  /** Set for DLQ. */
  readonly dlqTopic?: string;
  readonly reason: string;
  /** The failing field's path in the event (`customer.ssn`), for CEL_FIELD conditions. */
  readonly field?: string;
}

/** One rule's result, as `trace` collects them (for `sluice schemas test`). */
export interface RuleOutcome {
  readonly rule: string;
  readonly type: Rule['type'];
  readonly kind: Rule['kind'];
  readonly result: 'passed' | 'transformed' | 'failed';
  readonly action: 'NONE' | 'ERROR' | 'DLQ';
  readonly reason?: string;
  readonly field?: string;
}

export type RuleVerdict =
  | { readonly ok: true; readonly message: unknown; readonly outcomes?: RuleOutcome[] }
  | { readonly ok: false; readonly message: unknown; readonly failure: RuleFailure; readonly outcomes?: RuleOutcome[] };

export interface RunOptions {
  /** Collect every run rule's outcome in the verdict. */
  readonly trace?: boolean;
}

/** A rule that failed, and where. */
class RuleFailed extends Error {
  readonly field: string | undefined;
  constructor(message: string, field?: string) {
    super(message);
    this.field = field;
  }
}

interface CompiledRule {
  readonly rule: Rule;
  readonly async: boolean;
  /** The value a CONDITION gives (false fails), or the transformed message; may throw. */
  apply(message: unknown): unknown;
  /**
   * For a condition whose passing the closures can decide alone: true when it certainly passes on `message` (apply would
   * give a value other than false, without throwing), false when that is not decided here (the caller then applies it).
   */
  passes?: (message: unknown) => boolean;
  /** For a CEL condition with `passes`: its expression, which checkers join with the mode's other such conditions. */
  celCondition?: string;
  /** A CEL_FIELD transform shadowed by an earlier (WRITE/UPGRADE) or later (READ/DOWNGRADE) one with the same tags. */
  shadowedForward: boolean;
  shadowedBackward: boolean;
}

const conditionFailed = (rule: Rule): string => rule.doc || (rule.expr ? `Expr failed: '${rule.expr}'` : `Condition failed: '${rule.name}'`);

function compileRule(rule: Rule, shape: () => Shape): CompiledRule {
  const expr = rule.expr ?? '';
  const base = { rule, async: false, shadowedForward: false, shadowedBackward: false };
  switch (rule.type) {
    case 'CEL': {
      const program = compileExpression('CEL', expr) as CelProgram;
      // One bindings object per rule, refilled per event: CEL runs synchronously and keeps no reference to it (the
      // object holds on to the last event until the next, one per compiled rule at most).
      const bindings: { message: unknown } = { message: undefined };
      const { isTrue } = program;
      return {
        ...base,
        apply(message) {
          bindings.message = message;
          if (program.guarded && !program.guardPasses(bindings)) return rule.kind === 'CONDITION' ? true : message;
          return program.evaluate(bindings);
        },
        ...(rule.kind === 'CONDITION' && isTrue !== undefined
          ? {
              passes(message: unknown) {
                bindings.message = message;
                return isTrue(bindings);
              },
              celCondition: expr,
            }
          : {}),
      };
    }
    case 'CEL_FIELD': {
      const program = compileExpression('CEL_FIELD', expr) as CelProgram;
      const tags = new Set(rule.tags ?? []);
      const selected = pruneShape(shape(), (field) => tags.size === 0 || [...field.tags].some((t) => tags.has(t)));
      const condition = rule.kind === 'CONDITION';
      // The `tags` binding of each field, made once per field rather than once per visit.
      const tagLists = new WeakMap<FieldInfo, string[]>();
      const tagsOf = (field: FieldInfo): string[] => {
        let list = tagLists.get(field);
        if (list === undefined) tagLists.set(field, (list = [...field.tags]));
        return list;
      };
      // One bindings object per rule, refilled per visit (CEL runs synchronously and keeps no reference to it); `tags`
      // is a getter, so only an expression that reads it pays for the look-up of its list.
      let visited: FieldInfo | undefined;
      const bindings = {
        value: undefined as unknown,
        fullName: '',
        name: '',
        typeName: '',
        get tags(): string[] {
          return tagsOf(visited!);
        },
        message: undefined as unknown,
      };
      const bind = (field: FieldInfo, type: string, value: unknown, container: unknown): typeof bindings => {
        visited = field;
        bindings.value = value;
        bindings.fullName = field.fullName;
        bindings.name = field.name;
        bindings.typeName = type;
        bindings.message = container;
        return bindings;
      };
      const visitor: FieldVisitor = (field, type, value, container, path) => {
        bind(field, type, value, container);
        let result: unknown;
        try {
          if (program.guarded && !program.guardPasses(bindings)) return value;
          result = program.evaluate(bindings);
        } catch (error) {
          throw new RuleFailed((error as Error).message, path);
        }
        if (condition && result === false) throw new RuleFailed(conditionFailed(rule), path);
        return condition ? value : result;
      };
      const walk = selected === undefined ? undefined : compileWalk(selected);
      // passes(): the same visits, each field's value from the closures alone (bindings filled as the visitor fills
      // them); a field they do not find true sends the event to apply, which gives that field's failure or error.
      const passesWith = (isTrue: (bindings: CelBindings) => boolean) => {
        let allTrue = true;
        const quickVisitor: FieldVisitor = (field, type, value, container) => {
          if (!isTrue(bind(field, type, value, container))) allTrue = false;
          return value;
        };
        return (message: unknown): boolean => {
          if (walk === undefined) return true;
          allTrue = true;
          try {
            walk(message, quickVisitor, false);
          } catch {
            return false;
          }
          return allTrue;
        };
      };
      return {
        ...base,
        apply(message) {
          if (walk === undefined) return condition ? true : message;
          const out = walk(message, visitor, !condition);
          return condition ? true : out;
        },
        ...(condition && program.isTrue !== undefined ? { passes: passesWith(program.isTrue) } : {}),
      };
    }
    case 'JSONATA': {
      const program = compileExpression('JSONATA', expr) as JsonataProgram;
      return { ...base, async: true, apply: (message) => program.evaluate(message) };
    }
  }
}

const sameTags = (a: Rule, b: Rule): boolean => {
  const x = [...new Set(a.tags ?? [])].sort();
  const y = [...new Set(b.tags ?? [])].sort();
  return x.length > 0 && x.length === y.length && x.every((t, i) => t === y[i]);
};

/** Confluent's FieldRuleExecutor: of CEL_FIELD transforms with the same tags, kind, mode and type, only the first to run applies. */
function markShadowed(rules: CompiledRule[]): void {
  const twins = (a: Rule, b: Rule): boolean => a.kind === 'TRANSFORM' && b.kind === 'TRANSFORM' && a.mode === b.mode && a.type === b.type && a.type === 'CEL_FIELD' && sameTags(a, b);
  rules.forEach((r, i) => {
    r.shadowedForward = rules.slice(0, i).some((o) => twins(r.rule, o.rule));
    r.shadowedBackward = rules.slice(i + 1).some((o) => twins(r.rule, o.rule));
  });
}

function appliesTo(rule: Rule, mode: RunMode): boolean {
  switch (rule.mode) {
    case 'WRITEREAD':
      return mode === 'WRITE' || mode === 'READ';
    case 'UPDOWN':
      return mode === 'UPGRADE' || mode === 'DOWNGRADE';
    default:
      return rule.mode === mode;
  }
}

/** An action name as the rule's mode reads it: "a,b" is (write or upgrade, read or downgrade). */
function actionFor(rule: Rule, mode: RunMode, action: string | undefined, fallback: 'NONE' | 'ERROR'): 'NONE' | 'ERROR' | 'DLQ' {
  if (action === undefined || action === null || action === '') return fallback;
  let name = action;
  if ((rule.mode === 'WRITEREAD' || rule.mode === 'UPDOWN') && action.includes(',')) {
    const [first, second] = action.split(',');
    name = (mode === 'WRITE' || mode === 'UPGRADE' ? first : second) ?? '';
  }
  name = name.trim();
  return name === 'DLQ' || name === 'ERROR' || name === 'NONE' ? name : fallback;
}

/** Plain-data copy: transforms work on it, so a dead-lettered event is the one the caller sent. */
function copy(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(copy);
  if (typeof value === 'object' && value !== null && !(value instanceof Uint8Array)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = copy(v);
    return out;
  }
  return value;
}

/**
 * The CEL conditions of a checker as one expression, `(a) && (b) && …`, and its `passes`: true exactly when each alone
 * is true (CEL's `&&` is true only then), so the checker asks once, and `message` (bound, checked for a plain map) is
 * looked at once, not once per rule. Undefined for fewer than two, or when the joined text does not compile to
 * closures (too long, say): then each condition's own `passes` runs.
 */
function joinedConditions(expressions: readonly string[]): ((message: unknown) => boolean) | undefined {
  if (expressions.length < 2) return undefined;
  let program: CelProgram;
  try {
    program = compileExpression('CEL', expressions.map((e) => `(${e})`).join(' && ')) as CelProgram;
  } catch {
    return undefined;
  }
  const { isTrue } = program;
  if (isTrue === undefined) return undefined;
  const bindings: { message: unknown } = { message: undefined };
  return (message) => {
    bindings.message = message;
    return isTrue(bindings);
  };
}

const isThenable = (v: unknown): v is PromiseLike<unknown> => typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';

export class CompiledContract {
  readonly subject: string;
  readonly version: number;
  readonly id: number;
  readonly metadata: Metadata | undefined;
  readonly ruleSet: RuleSet | undefined;
  readonly #domain: CompiledRule[];
  readonly #migration: CompiledRule[];
  /** The rules of each run mode, picked once: the choice depends on the version only, not on the event. */
  readonly #byMode = new Map<RunMode, CompiledRule[]>();
  readonly #quietByMode = new Map<RunMode, boolean[]>();
  /** Each mode's check (checker), made once. */
  readonly #checkers = new Map<RunMode, (message: unknown) => RuleVerdict | Promise<RuleVerdict> | undefined>();

  constructor(target: ContractVersion) {
    const problems = validateRuleSet(target.ruleSet, target.metadata);
    if (problems.length > 0) throw new Error(`invalid rules for ${target.subject} version ${target.version}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
    this.subject = target.subject;
    this.version = target.version;
    this.id = target.id;
    this.metadata = target.metadata;
    this.ruleSet = target.ruleSet ? normalizeRuleSet(target.ruleSet) : undefined;
    let shape: Shape | undefined;
    const lazyShape = (): Shape => (shape ??= fieldShape(target.codec, target.metadata));
    const enabled = this.ruleSet?.enableAt === undefined || this.ruleSet.enableAt === 'ALL' || this.ruleSet.enableAt === 'CLIENT';
    const compile = (rules: Rule[] | undefined): CompiledRule[] => (enabled ? (rules ?? []).map((r) => compileRule(r, lazyShape)) : []);
    this.#domain = compile(this.ruleSet?.domainRules);
    this.#migration = compile(this.ruleSet?.migrationRules);
    markShadowed(this.#domain);
    markShadowed(this.#migration);
  }

  /** Whether any enabled rule runs in `mode` (callers skip the run, and its copy, when none does). */
  has(mode: RunMode): boolean {
    return this.#rulesFor(mode).length > 0;
  }

  #rulesFor(mode: RunMode): CompiledRule[] {
    let rules = this.#byMode.get(mode);
    if (rules === undefined) this.#byMode.set(mode, (rules = this.#pick(mode)));
    return rules;
  }

  #pick(mode: RunMode): CompiledRule[] {
    const list = mode === 'UPGRADE' || mode === 'DOWNGRADE' ? this.#migration : this.#domain;
    const forward = mode === 'WRITE' || mode === 'UPGRADE';
    const picked = list.filter((r) => r.rule.disabled !== true && appliesTo(r.rule, mode) && !(forward ? r.shadowedForward : r.shadowedBackward));
    return forward ? picked : picked.reverse();
  }

  /** The name of the last transform that runs in `mode`: the rule a schema-breaking result is charged to. */
  lastTransform(mode: RunMode): string | undefined {
    return this.#rulesFor(mode)
      .filter((r) => r.rule.kind === 'TRANSFORM')
      .at(-1)?.rule.name;
  }

  #dlqTopic(rule: Rule): string | undefined {
    return rule.params?.[DLQ_TOPIC_PARAM] ?? this.metadata?.properties?.[DLQ_TOPIC_PARAM];
  }

  /** Runs the rules of `mode` on `message`; synchronous unless a JSONATA rule runs. */
  run(mode: RunMode, message: unknown, options: RunOptions = {}): RuleVerdict | Promise<RuleVerdict> {
    const rules = this.#rulesFor(mode);
    if (rules.length === 0) return { ok: true, message };
    if (options.trace) return this.#runFrom(mode, rules, message, message, false, 0, undefined, []);
    return this.#runQuiet(mode, rules, message) ?? { ok: true, message };
  }

  /**
   * `run` for a caller with many messages that keeps a message when nothing happens to it (runWriteRules), as a
   * function of the message (the mode's rules looked up once): undefined when every rule of `mode` passed without an
   * action and none transformed it, the usual event, for which no verdict is made; else run's verdict. When every rule
   * of the mode is a condition with `passes` and no onSuccess action (the usual WRITE contract), a message every
   * `passes` accepts (the CEL ones asked as one, joinedConditions) is done without `apply`'s layers (its bindings, the
   * evaluator's value checks, the settling): it could only have passed. Any other message runs the rules from the
   * first (conditions are pure: running one twice gives the same).
   */
  checker(mode: RunMode): (message: unknown) => RuleVerdict | Promise<RuleVerdict> | undefined {
    let checker = this.#checkers.get(mode);
    if (checker === undefined) this.#checkers.set(mode, (checker = this.#makeChecker(mode)));
    return checker;
  }

  #makeChecker(mode: RunMode): (message: unknown) => RuleVerdict | Promise<RuleVerdict> | undefined {
    const rules = this.#rulesFor(mode);
    if (rules.length === 0) return () => undefined;
    const quiet = this.#quietFor(mode);
    const tests = rules.map((r, i) => (quiet[i] === true ? r.passes : undefined));
    if (tests.some((t) => t === undefined)) return (message) => this.#runQuiet(mode, rules, message);
    const joined = joinedConditions(rules.flatMap((r) => (r.celCondition === undefined ? [] : [r.celCondition])));
    const passes = joined === undefined ? (tests as ((message: unknown) => boolean)[]) : [joined, ...rules.flatMap((r) => (r.celCondition === undefined ? [r.passes!] : []))];
    return (message) => {
      for (let i = 0; i < passes.length; i++) if (!passes[i]!(message)) return this.#runQuiet(mode, rules, message);
      return undefined;
    };
  }

  /** The run without tracing; undefined when every rule passed without an action and no transform ran. */
  #runQuiet(mode: RunMode, rules: readonly CompiledRule[], message: unknown): RuleVerdict | Promise<RuleVerdict> | undefined {
    // The usual run, every rule passing without an action, allocates no closure or outcome per event: a rule
    // whose result needs more (a failure, an action, a Promise, a transform's null) goes on in #runFrom.
    const quiet = this.#quietFor(mode);
    let current = message;
    let copied = false;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      const transform = r.rule.kind === 'TRANSFORM';
      if (transform && !copied) {
        current = copy(current);
        copied = true;
      }
      let result: unknown;
      try {
        result = r.apply(current);
      } catch (error) {
        return this.#runFrom(mode, rules, message, current, copied, i, { error: error ?? new Error('the rule threw') }, undefined);
      }
      if (quiet[i] === true && !isThenable(result)) {
        if (!transform && result !== false) continue;
        if (transform && result !== null && result !== undefined) {
          current = result;
          continue;
        }
      }
      return this.#runFrom(mode, rules, message, current, copied, i, { result }, undefined);
    }
    // A transform ran on a copy: the message given back is that copy, even when no transform changed a value.
    return copied ? { ok: true, message: current } : undefined;
  }

  /** Per rule of `mode`: whether its onSuccess action there is NONE (a passing rule then just goes on). */
  #quietFor(mode: RunMode): boolean[] {
    let quiet = this.#quietByMode.get(mode);
    if (quiet === undefined) this.#quietByMode.set(mode, (quiet = this.#rulesFor(mode).map((r) => actionFor(r.rule, mode, r.rule.onSuccess, 'NONE') === 'NONE')));
    return quiet;
  }

  /**
   * The run from rule `start` on, settling each rule's outcome (collected in `outcomes` when tracing); `first`, when
   * given, is rule `start`'s result or error, already applied to `current`.
   */
  #runFrom(
    mode: RunMode,
    rules: readonly CompiledRule[],
    original: unknown,
    current: unknown,
    copied: boolean,
    start: number,
    first: { result?: unknown; error?: unknown } | undefined,
    outcomes: RuleOutcome[] | undefined,
  ): RuleVerdict | Promise<RuleVerdict> {
    /** Applies the outcome of rule `i`; a verdict ends the run. */
    const settle = (r: CompiledRule, result: unknown, error: unknown): RuleVerdict | undefined => {
      const { rule } = r;
      let failed: RuleFailed | undefined;
      if (error !== undefined) failed = error instanceof RuleFailed ? error : new RuleFailed(error instanceof Error ? error.message : String(error));
      else if (rule.kind === 'CONDITION' && result === false) failed = new RuleFailed(conditionFailed(rule));
      else if (rule.kind === 'TRANSFORM') {
        if (result === null || result === undefined) failed = new RuleFailed('the transform gave no value');
        else current = result;
      }
      const action = failed ? actionFor(rule, mode, rule.onFailure, 'ERROR') : actionFor(rule, mode, rule.onSuccess, 'NONE');
      outcomes?.push({
        rule: rule.name,
        type: rule.type,
        kind: rule.kind,
        result: failed ? 'failed' : rule.kind === 'TRANSFORM' ? 'transformed' : 'passed',
        action,
        ...(failed ? { reason: failed.message } : {}),
        ...(failed?.field !== undefined ? { field: failed.field } : {}),
      });
      if (action === 'NONE') return undefined;
      const reason = failed ? failed.message : `the rule passed and its onSuccess action is ${action}`;
      const failure: RuleFailure = {
        rule: rule.name,
        subject: this.subject,
        version: this.version,
        mode,
        action,
        reason,
        ...(action === 'DLQ' ? { dlqTopic: this.#dlqTopic(rule) } : {}),
        ...(failed?.field !== undefined ? { field: failed.field } : {}),
      };
      return { ok: false, message: original, failure, ...(outcomes ? { outcomes } : {}) };
    };

    /** Rule `i`'s result (or its Promise): settled, then the rules after it. */
    const after = (i: number, result: unknown, error: unknown): RuleVerdict | Promise<RuleVerdict> => {
      const r = rules[i]!;
      if (error === undefined && isThenable(result)) {
        return Promise.resolve(result).then(
          (value) => settle(r, value, undefined) ?? loop(i + 1),
          (failure: unknown) => settle(r, undefined, failure ?? new Error('the rule threw')) ?? loop(i + 1),
        );
      }
      return settle(r, result, error) ?? loop(i + 1);
    };

    const loop = (from: number): RuleVerdict | Promise<RuleVerdict> => {
      for (let i = from; i < rules.length; i++) {
        const r = rules[i]!;
        if (r.rule.kind === 'TRANSFORM' && !copied) {
          current = copy(current);
          copied = true;
        }
        let result: unknown;
        try {
          result = r.apply(current);
        } catch (error) {
          const verdict = settle(r, undefined, error ?? new Error('the rule threw'));
          if (verdict) return verdict;
          continue;
        }
        if (isThenable(result)) return after(i, result, undefined);
        const verdict = settle(r, result, undefined);
        if (verdict) return verdict;
      }
      return { ok: true, message: current, ...(outcomes ? { outcomes } : {}) };
    };
    return first === undefined ? loop(start) : after(start, first.result, first.error);
  }
}

/**
 * Migrates a message written with version `from` to version `to` of the same
 * subject, as Confluent's deserializer does: upgrading runs the UPGRADE rules
 * of each later version in turn, downgrading the DOWNGRADE rules of each
 * version from `from` down to just above `to`. `versions` are the subject's
 * compiled versions (any order; those between are used).
 */
export async function migrate(versions: readonly CompiledContract[], from: number, to: number, message: unknown, options: RunOptions = {}): Promise<RuleVerdict> {
  if (from === to) return { ok: true, message };
  const upgrading = from < to;
  const steps = versions
    .filter((v) => (upgrading ? v.version > from && v.version <= to : v.version <= from && v.version > to))
    .sort((a, b) => (upgrading ? a.version - b.version : b.version - a.version));
  let current = message;
  const outcomes: RuleOutcome[] = [];
  for (const step of steps) {
    const verdict = await step.run(upgrading ? 'UPGRADE' : 'DOWNGRADE', current, options);
    if (verdict.outcomes) outcomes.push(...verdict.outcomes);
    if (!verdict.ok) return { ...verdict, message, ...(options.trace ? { outcomes } : {}) };
    current = verdict.message;
  }
  return { ok: true, message: current, ...(options.trace ? { outcomes } : {}) };
}

/** Compiled contracts by subject, version and id: each version compiles once, however many events it sees. */
export class ContractCache {
  readonly #entries = new Map<string, CompiledContract>();
  readonly #max: number;

  constructor(max = 1024) {
    this.#max = max;
  }

  get(target: ContractVersion): CompiledContract {
    const key = `${target.id}\0${target.subject}\0${target.version}`;
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      entry = new CompiledContract(target);
      if (this.#entries.size >= this.#max) this.#entries.delete(this.#entries.keys().next().value!);
      this.#entries.set(key, entry);
    }
    return entry;
  }
}
