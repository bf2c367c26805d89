import type { Metadata, Rule, RuleSet } from './types.ts';

/**
 * Confluent's merges of data contracts (Metadata.mergeMetadata,
 * RuleSet.mergeRuleSets): a registration's contract is the config's default,
 * then the request's own (or the previous version's when the request has
 * none), then the config's override. Maps merge key by key (later wins),
 * sets by union, rule lists by name (a later rule replaces an earlier one of
 * the same name; new ones are appended).
 */

const empty = (v: object | undefined): boolean => v === undefined || Object.keys(v).length === 0;

function mergeMap<T>(a: Record<string, T> | undefined, b: Record<string, T> | undefined): Record<string, T> | undefined {
  if (a === undefined || empty(a)) return b;
  if (b === undefined || empty(b)) return a;
  return Object.fromEntries(Object.entries({ ...a, ...b }).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
}

function mergeSet(a: string[] | undefined, b: string[] | undefined): string[] | undefined {
  if (a === undefined || a.length === 0) return b;
  if (b === undefined || b.length === 0) return a;
  return [...new Set([...a, ...b])].sort();
}

export function mergeMetadata(older: Metadata | undefined, newer: Metadata | undefined): Metadata | undefined {
  if (older === undefined) return newer;
  if (newer === undefined) return older;
  const out: Metadata = {};
  const tags = mergeMap(older.tags, newer.tags);
  const properties = mergeMap(older.properties, newer.properties);
  const sensitive = mergeSet(older.sensitive, newer.sensitive);
  if (tags !== undefined) out.tags = tags;
  if (properties !== undefined) out.properties = properties;
  if (sensitive !== undefined) out.sensitive = sensitive;
  return out;
}

function mergeRules(older: Rule[] | undefined, newer: Rule[] | undefined): Rule[] | undefined {
  if (older === undefined || older.length === 0) return newer;
  if (newer === undefined || newer.length === 0) return older;
  const replaced = new Set(newer.map((r) => r.name));
  return [...older.filter((r) => !replaced.has(r.name)), ...newer];
}

export function mergeRuleSets(older: RuleSet | undefined, newer: RuleSet | undefined): RuleSet | undefined {
  if (older === undefined) return newer;
  if (newer === undefined) return older;
  const out: RuleSet = {};
  for (const list of ['migrationRules', 'domainRules', 'encodingRules'] as const) {
    const merged = mergeRules(older[list], newer[list]);
    if (merged !== undefined) out[list] = merged;
  }
  const enableAt = newer.enableAt ?? older.enableAt;
  if (enableAt !== undefined) out.enableAt = enableAt;
  return out;
}
