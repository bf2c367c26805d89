import { sortKeys } from '../registry/state.ts';
import { normalizeRuleSet, type Rule, type RuleSet } from '../rules/index.ts';
import type { DeclaredContract } from './model.ts';

/**
 * What registering a declared contract changes against the subject's latest version, in words for the
 * plan: rules added, removed or changed (by name, in either list), and whether the metadata differs.
 * Both sides are normalized as the registry normalizes them, so defaults and key order are no change.
 */

type Lists = 'domainRules' | 'migrationRules';
const LISTS: { key: Lists; label: string }[] = [
  { key: 'domainRules', label: 'domain rule' },
  { key: 'migrationRules', label: 'migration rule' },
];

/** Key order does not make two JSON values differ. */
const canonical = (value: unknown): string => JSON.stringify(sortKeys(value));

function byName(ruleSet: RuleSet | undefined, key: Lists): Map<string, Rule> {
  const normalized = ruleSet ? normalizeRuleSet(ruleSet) : undefined;
  return new Map((normalized?.[key] ?? []).map((r) => [r.name, r]));
}

export function contractChanges(declared: DeclaredContract, live: DeclaredContract | undefined): string[] {
  const changes: string[] = [];
  for (const { key, label } of LISTS) {
    const wanted = byName(declared.ruleSet, key);
    const current = byName(live?.ruleSet, key);
    for (const [name, rule] of wanted) {
      const before = current.get(name);
      if (!before) changes.push(`+ ${label} ${name} (${rule.type} ${rule.kind} ${rule.mode})`);
      else if (canonical(before) !== canonical(rule)) changes.push(`~ ${label} ${name}`);
    }
    for (const name of current.keys()) if (!wanted.has(name)) changes.push(`- ${label} ${name}`);
  }
  if (canonical(declared.metadata ?? {}) !== canonical(live?.metadata ?? {})) changes.push('~ metadata');
  return changes;
}
