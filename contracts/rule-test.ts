import { stringifyJson } from '../core/json.ts';
import type { RegistryClient } from '../core/registry-client.ts';
import type { FieldViolation } from '../core/errors.ts';
import { createCodec } from '../core/formats/index.ts';
import { CompiledContract, type Metadata, type RuleFailure, type RuleOutcome, type RuleSet, type RunMode } from '../rules/index.ts';

/**
 * `sluice schemas test <subject> --event file.json`: an event against a subject version's schema and each of
 * its rules, as the ingress (WRITE) or a worker (READ) would run them, with every rule's verdict, so a rule can
 * be tried before events meet it. The rules run in the same engine the services use (rules/).
 */

export interface RuleTestResult {
  subject: string;
  version: number;
  id: number;
  mode: RunMode;
  /** Schema violations; rules run only on an event the schema accepts, as at the ingress. */
  violations: FieldViolation[];
  outcomes: RuleOutcome[];
  /** The rule whose action stops the event (ERROR refuses it, DLQ dead-letters it). */
  failure?: RuleFailure;
  /** The event after the rules' transforms (masking), as it would be encoded. */
  message?: unknown;
}

interface VersionAnswer {
  id: number;
  version: number;
  metadata?: Metadata;
  ruleSet?: RuleSet;
}

export async function testRules(registry: RegistryClient, subject: string, version: string, event: unknown, mode: RunMode): Promise<RuleTestResult> {
  const answer = await registry.request<VersionAnswer>('GET', `/subjects/${encodeURIComponent(subject)}/versions/${encodeURIComponent(version)}`);
  const codec = createCodec(await registry.resolvedSubjectVersion(subject, answer.version));
  const base = { subject, version: answer.version, id: answer.id, mode };
  const violations = codec.validate(event);
  if (violations.length > 0) return { ...base, violations, outcomes: [] };
  const contract = new CompiledContract({
    subject,
    version: answer.version,
    id: answer.id,
    codec,
    ...(answer.metadata ? { metadata: answer.metadata } : {}),
    ...(answer.ruleSet ? { ruleSet: answer.ruleSet } : {}),
  });
  const verdict = await contract.run(mode, event, { trace: true });
  return { ...base, violations, outcomes: verdict.outcomes ?? [], ...(verdict.ok ? { message: verdict.message } : { failure: verdict.failure }) };
}

/** Whether the event would go through: valid, and no rule's action stops it. */
export const passes = (result: RuleTestResult): boolean => result.violations.length === 0 && result.failure === undefined;

const MARK: Record<RuleOutcome['result'], string> = { passed: 'pass', transformed: 'xform', failed: 'FAIL' };

export function formatRuleTest(result: RuleTestResult): string {
  const lines = [`${result.subject} version ${result.version} (id ${result.id}), ${result.mode} rules:`];
  for (const v of result.violations) lines.push(`  FAIL  schema: ${v.path === '' ? '(the event)' : v.path}: ${v.message}`);
  if (result.violations.length === 0 && result.outcomes.length === 0) lines.push(`  (no ${result.mode} rules)`);
  for (const o of result.outcomes) {
    const action = o.action === 'NONE' ? '' : ` -> ${o.action}`;
    const why = o.reason === undefined ? '' : `: ${o.field === undefined ? '' : `${o.field}: `}${o.reason}`;
    lines.push(`  ${MARK[o.result].padEnd(5)} ${o.rule} (${o.type} ${o.kind})${action}${why}`);
  }
  if (result.failure) {
    const where = result.failure.action === 'DLQ' ? `dead-lettered to ${result.failure.dlqTopic ?? '(no dlq.topic set)'}` : 'refused (422)';
    lines.push('', `The event would be ${where} by rule ${result.failure.rule}.`);
  } else if (result.violations.length > 0) {
    lines.push('', 'The event would be refused (400): it does not match the schema.');
  } else {
    lines.push('', 'The event would be accepted as:', stringifyJson(result.message, 2));
  }
  return `${lines.join('\n')}\n`;
}
