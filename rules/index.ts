/**
 * Data contracts: Confluent's `metadata` and `ruleSet` on a schema version,
 * validated (validate.ts), compiled once per version and run on events
 * (engine.ts) by the ingress, workers, `sluice tail` and the CLI alike;
 * subject-contracts.ts keeps a service's contracts current from the registry.
 * Imports core/ only.
 */
export * from './types.ts';
export { validateRuleSet, validateMetadata, normalizeRuleSet, type RuleProblem } from './validate.ts';
export { CompiledContract, ContractCache, migrate, type ContractVersion, type RuleFailure, type RuleOutcome, type RuleVerdict, type RunOptions } from './engine.ts';
export type { FieldTypeName } from './fields.ts';
export { SubjectContracts, runWriteRules, ruleHeaders, CONTRACT_REFRESH_MS, type SubjectBinding, type SubjectContract, type RuleResults } from './subject-contracts.ts';
export { mergeMetadata, mergeRuleSets } from './merge.ts';
