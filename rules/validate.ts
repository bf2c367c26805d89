import { compileCel, type CelProgram } from './cel.ts';
import { compileJsonata, type JsonataProgram } from './jsonata.ts';
import { DLQ_TOPIC_PARAM, RULE_ACTIONS, RULE_KINDS, RULE_MODES, RULE_TYPES, type Metadata, type Rule, type RuleSet } from './types.ts';

/**
 * Checks a data contract (`metadata` and `ruleSet`) as a registration gives
 * it, before anything is stored: Confluent's own checks (rule names, unique
 * across the set; domain rules WRITE/READ/WRITEREAD, migration rules
 * UPGRADE/DOWNGRADE/UPDOWN; an action pair only on WRITEREAD and UPDOWN) and
 * Sluice's (kind, type and actions known, the expression compiles within its
 * bounds, a DLQ action names its topic). Each problem names the rule and the
 * field. Time is bounded: every string is length-checked before it is parsed.
 */

export interface RuleProblem {
  /** The rule's name, when the problem is one rule's. */
  readonly rule?: string;
  /** Where, as a JSON path into the request: `ruleSet.domainRules[1].expr`. */
  readonly path: string;
  readonly message: string;
}

const NAME_MAX_LENGTH = 256;
const MAX_RULES = 100;
const MAX_ENTRIES = 1000;
const MAX_STRING = 4096;
const DOMAIN_MODES = new Set(['WRITE', 'READ', 'WRITEREAD']);
const MIGRATION_MODES = new Set(['UPGRADE', 'DOWNGRADE', 'UPDOWN']);
const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Compiled expressions by type and text: the same rule on many versions (or re-registered) compiles once. */
const programs = new Map<string, CelProgram | JsonataProgram | Error>();
const MAX_PROGRAMS = 4096;

export function compileExpression(type: 'CEL' | 'CEL_FIELD' | 'JSONATA', expr: string): CelProgram | JsonataProgram {
  const key = `${type === 'JSONATA' ? 'J' : 'C'}\0${expr}`;
  let program = programs.get(key);
  if (program === undefined) {
    try {
      program = type === 'JSONATA' ? compileJsonata(expr) : compileCel(expr);
    } catch (error) {
      program = error instanceof Error ? error : new Error(String(error));
    }
    if (programs.size >= MAX_PROGRAMS) programs.delete(programs.keys().next().value!);
    programs.set(key, program);
  }
  if (program instanceof Error) throw program;
  return program;
}

/** Confluent's rule-name grammar: a letter or `_`, then letters, digits, `_` and `-`. */
function nameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string') return 'a rule needs a name (string)';
  if (name.length === 0) return 'the rule name is empty';
  if (name.length > NAME_MAX_LENGTH) return `the rule name is longer than ${NAME_MAX_LENGTH} characters`;
  if (!/^[\p{L}_][\p{L}\p{N}_-]*$/u.test(name)) return `illegal character in rule name ${JSON.stringify(name)} (a letter or _ first, then letters, digits, _ and -)`;
  return undefined;
}

function actionProblem(mode: string, value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') return 'must be a string';
  const parts = value.split(',');
  if (parts.length > 1 && mode !== 'WRITEREAD' && mode !== 'UPDOWN') return `${JSON.stringify(value)}: an action pair is only valid with WRITEREAD and UPDOWN`;
  if (parts.length > 2) return `${JSON.stringify(value)}: at most two actions`;
  const unknown = parts.map((p) => p.trim()).find((p) => !(RULE_ACTIONS as readonly string[]).includes(p));
  if (unknown !== undefined) return `unknown action ${JSON.stringify(unknown)} (one of ${RULE_ACTIONS.join(', ')})`;
  return undefined;
}

/** The fields Confluent's registry knows in each object of a data contract: any other would be dropped, so it is refused. */
const METADATA_FIELDS = new Set(['tags', 'properties', 'sensitive']);
const RULE_SET_FIELDS = new Set(['migrationRules', 'domainRules', 'encodingRules', 'enableAt']);
const RULE_FIELDS = new Set(['name', 'doc', 'kind', 'mode', 'type', 'tags', 'params', 'expr', 'onSuccess', 'onFailure', 'disabled']);

function unknownFields(value: Record<string, unknown>, known: ReadonlySet<string>, path: string, out: RuleProblem[], rule?: string): void {
  for (const key of Object.keys(value)) {
    if (!known.has(key)) out.push({ rule, path: `${path}.${key}`, message: `unknown field (known: ${[...known].join(', ')})` });
  }
}

function stringMap(value: unknown, path: string, out: RuleProblem[], rule?: string): void {
  if (value === undefined || value === null) return;
  if (!isObject(value)) return void out.push({ rule, path, message: 'must be an object of strings' });
  const entries = Object.entries(value);
  if (entries.length > MAX_ENTRIES) return void out.push({ rule, path, message: `at most ${MAX_ENTRIES} entries` });
  for (const [k, v] of entries) {
    if (typeof v !== 'string') out.push({ rule, path: `${path}.${k}`, message: 'must be a string' });
    else if (v.length > MAX_STRING || k.length > MAX_STRING) out.push({ rule, path: `${path}.${k}`, message: `longer than ${MAX_STRING} characters` });
  }
}

function stringList(value: unknown, path: string, out: RuleProblem[], rule?: string): void {
  if (value === undefined || value === null) return;
  if (!Array.isArray(value)) return void out.push({ rule, path, message: 'must be a list of strings' });
  if (value.length > MAX_ENTRIES) return void out.push({ rule, path, message: `at most ${MAX_ENTRIES} entries` });
  value.forEach((v, i) => {
    if (typeof v !== 'string' || v.length > MAX_STRING) out.push({ rule, path: `${path}[${i}]`, message: `must be a string of at most ${MAX_STRING} characters` });
  });
}

export function validateMetadata(metadata: unknown, path = 'metadata'): RuleProblem[] {
  const out: RuleProblem[] = [];
  if (metadata === undefined || metadata === null) return out;
  if (!isObject(metadata)) return [{ path, message: 'must be an object' }];
  unknownFields(metadata, METADATA_FIELDS, path, out);
  const tags = metadata.tags;
  if (tags !== undefined && tags !== null) {
    if (!isObject(tags)) out.push({ path: `${path}.tags`, message: 'must be an object of field path globs to lists of tags' });
    else if (Object.keys(tags).length > MAX_ENTRIES) out.push({ path: `${path}.tags`, message: `at most ${MAX_ENTRIES} entries` });
    else for (const [glob, list] of Object.entries(tags)) stringList(list, `${path}.tags.${glob}`, out);
  }
  stringMap(metadata.properties, `${path}.properties`, out);
  stringList(metadata.sensitive, `${path}.sensitive`, out);
  return out;
}

function validateRule(raw: unknown, path: string, list: 'domainRules' | 'migrationRules' | 'encodingRules', metadata: Metadata | undefined, out: RuleProblem[]): void {
  if (!isObject(raw)) return void out.push({ path, message: 'a rule must be an object' });
  const name = typeof raw.name === 'string' ? raw.name : undefined;
  const problem = (field: string, message: string): void => void out.push({ rule: name, path: field === '' ? path : `${path}.${field}`, message });
  const badName = nameProblem(raw.name);
  if (badName) problem('name', badName);
  unknownFields(raw, RULE_FIELDS, path, out, name);
  const mode = raw.mode ?? 'WRITEREAD';
  if (typeof mode !== 'string' || !(RULE_MODES as readonly string[]).includes(mode)) problem('mode', `unknown mode ${JSON.stringify(mode ?? null)} (one of ${RULE_MODES.join(', ')})`);
  else if (list === 'migrationRules' && !MIGRATION_MODES.has(mode)) problem('mode', `migration rules can only be UPGRADE, DOWNGRADE, UPDOWN (got ${mode})`);
  else if (list !== 'migrationRules' && !DOMAIN_MODES.has(mode)) problem('mode', `${list === 'domainRules' ? 'domain' : 'encoding'} rules can only be WRITE, READ, WRITEREAD (got ${mode})`);
  const kind = raw.kind ?? 'TRANSFORM';
  if (typeof kind !== 'string' || !(RULE_KINDS as readonly string[]).includes(kind)) problem('kind', `unknown kind ${JSON.stringify(kind)} (one of ${RULE_KINDS.join(', ')})`);
  const type = raw.type;
  if (typeof type !== 'string' || !(RULE_TYPES as readonly string[]).includes(type)) problem('type', `unknown rule type ${JSON.stringify(type ?? null)} (one of ${RULE_TYPES.join(', ')})`);
  for (const field of ['onSuccess', 'onFailure'] as const) {
    const bad = actionProblem(typeof mode === 'string' ? mode : '', raw[field]);
    if (bad) problem(field, bad);
  }
  stringList(raw.tags, `${path}.tags`, out, name);
  stringMap(raw.params, `${path}.params`, out, name);
  if (raw.doc !== undefined && raw.doc !== null && (typeof raw.doc !== 'string' || raw.doc.length > MAX_STRING)) problem('doc', `must be a string of at most ${MAX_STRING} characters`);
  if (raw.disabled !== undefined && raw.disabled !== null && typeof raw.disabled !== 'boolean') problem('disabled', 'must be true or false');
  const usesDlq = [raw.onSuccess, raw.onFailure].some((a) => typeof a === 'string' && a.split(',').some((p) => p.trim() === 'DLQ'));
  if (usesDlq) {
    const params = isObject(raw.params) ? raw.params : {};
    const topic = params[DLQ_TOPIC_PARAM] ?? metadata?.properties?.[DLQ_TOPIC_PARAM];
    if (typeof topic !== 'string' || topic === '') problem('params', `the DLQ action needs params["${DLQ_TOPIC_PARAM}"] (or a metadata property of that name)`);
    else if (!TOPIC_NAME.test(topic)) problem('params', `${JSON.stringify(topic)} is not a valid topic name`);
  }
  if (typeof type === 'string' && (RULE_TYPES as readonly string[]).includes(type) && list !== 'encodingRules') {
    if (typeof raw.expr !== 'string' || raw.expr.trim() === '') problem('expr', `a ${type} rule needs an expression`);
    else {
      try {
        compileExpression(type as 'CEL' | 'CEL_FIELD' | 'JSONATA', raw.expr);
      } catch (error) {
        problem('expr', `does not compile: ${(error as Error).message}`);
      }
    }
  }
}

/** Every problem of a ruleSet (and its use of `metadata`); empty when it can be stored and run. */
export function validateRuleSet(ruleSet: unknown, metadata?: unknown, path = 'ruleSet'): RuleProblem[] {
  const out: RuleProblem[] = [];
  if (ruleSet === undefined || ruleSet === null) return out;
  if (!isObject(ruleSet)) return [{ path, message: 'must be an object' }];
  unknownFields(ruleSet, RULE_SET_FIELDS, path, out);
  const meta = isObject(metadata) ? (metadata as Metadata) : undefined;
  const names = new Set<string>();
  for (const list of ['migrationRules', 'domainRules', 'encodingRules'] as const) {
    const rules = ruleSet[list];
    if (rules === undefined || rules === null) continue;
    if (!Array.isArray(rules)) {
      out.push({ path: `${path}.${list}`, message: 'must be a list of rules' });
      continue;
    }
    if (rules.length > MAX_RULES) {
      out.push({ path: `${path}.${list}`, message: `at most ${MAX_RULES} rules` });
      continue;
    }
    rules.forEach((rule: unknown, i) => {
      const where = `${path}.${list}[${i}]`;
      const name = isObject(rule) && typeof rule.name === 'string' ? rule.name : undefined;
      if (name !== undefined && names.has(name)) out.push({ rule: name, path: `${where}.name`, message: `found rule with duplicate name '${name}'` });
      if (name !== undefined) names.add(name);
      validateRule(rule, where, list, meta, out);
    });
  }
  if (ruleSet.enableAt !== undefined && ruleSet.enableAt !== null && typeof ruleSet.enableAt !== 'string') out.push({ path: `${path}.enableAt`, message: 'must be a string' });
  return out;
}

/**
 * A validated ruleSet as Confluent's registry keeps it: kind TRANSFORM and
 * mode WRITEREAD when absent, tags sorted and unique, params by key, disabled
 * false. Two registrations of the same rules compare equal in this form.
 */
export function normalizeRuleSet(ruleSet: RuleSet): RuleSet {
  const sortKeys = (params: Record<string, string> | undefined): Record<string, string> => Object.fromEntries(Object.entries(params ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const fill = (rules: Rule[] | undefined): Rule[] | undefined =>
    rules?.map((r) => {
      // Empty tags and params are left out, as Confluent's JSON (NON_EMPTY) does.
      const out: Rule = { name: r.name, kind: r.kind ?? 'TRANSFORM', mode: r.mode ?? 'WRITEREAD', type: r.type };
      const tags = [...new Set(r.tags ?? [])].sort();
      if (tags.length > 0) out.tags = tags;
      if (Object.keys(r.params ?? {}).length > 0) out.params = sortKeys(r.params);
      if (r.doc !== undefined && r.doc !== null) out.doc = r.doc;
      if (r.expr !== undefined && r.expr !== null) out.expr = r.expr;
      if (r.onSuccess !== undefined && r.onSuccess !== null) out.onSuccess = r.onSuccess;
      if (r.onFailure !== undefined && r.onFailure !== null) out.onFailure = r.onFailure;
      out.disabled = r.disabled === true;
      return out;
    });
  const out: RuleSet = {};
  for (const list of ['migrationRules', 'domainRules', 'encodingRules'] as const) if (ruleSet[list] !== undefined && ruleSet[list] !== null) out[list] = fill(ruleSet[list]);
  if (typeof ruleSet.enableAt === 'string') out.enableAt = ruleSet.enableAt;
  return out;
}
