import { relative } from 'node:path';
import type { DeclaredContract } from './model.ts';
import type { ApplyResult, Plan, PlanAction } from './plan.ts';

/** How plans and apply results read for people (terraform-like) and for machines (--json). */

const shown = (file: string): string => relative(process.cwd(), file) || file;

function configsText(configs: Record<string, string>): string {
  const entries = Object.entries(configs);
  return entries.length === 0 ? '' : `, ${entries.map(([k, v]) => `${k}=${v}`).join(', ')}`;
}

function ruleCount(ruleSet: NonNullable<DeclaredContract['ruleSet']>): string {
  const n = (ruleSet.domainRules?.length ?? 0) + (ruleSet.migrationRules?.length ?? 0);
  return `${n} rule${n === 1 ? '' : 's'}`;
}

export function describeAction(action: PlanAction): string {
  switch (action.type) {
    case 'create-topic':
      return `create topic ${action.topic} (${action.partitions} partitions, replication factor ${action.replicationFactor}${configsText(action.configs)})`;
    case 'add-partitions':
      return `add partitions to ${action.topic}: ${action.from} -> ${action.to}`;
    case 'alter-topic-configs':
      return `alter configs of ${action.topic}: ${action.changes.map((c) => `${c.name} ${c.from ?? '(unset)'} -> ${c.to}`).join(', ')}`;
    case 'delete-topic':
      return `delete topic ${action.topic} (its data is lost)`;
    case 'set-compatibility':
      return `set compatibility of ${action.subject}: ${action.from ?? '(global level)'} -> ${action.to}`;
    case 'register-schema': {
      const what = `register ${shown(action.file)} as ${action.newSubject ? 'version 1 of new subject' : 'a new version of'} ${action.subject}`;
      const rules = action.contract?.ruleSet ? ` with ${ruleCount(action.contract.ruleSet)}` : '';
      return `${what}${rules}${(action.contractChanges ?? []).map((c) => `\n      ${c}`).join('')}`;
    }
  }
}

const SYMBOL: Record<PlanAction['type'], string> = {
  'create-topic': '+',
  'add-partitions': '~',
  'alter-topic-configs': '~',
  'delete-topic': '-',
  'set-compatibility': '~',
  'register-schema': '+',
};

export function formatPlan(plan: Plan, topologyName: string, file: string): string {
  const lines = [`Plan for topology "${topologyName}" (${shown(file)}):`, ''];
  for (const action of plan.actions) lines.push(`  ${SYMBOL[action.type]} ${describeAction(action)}`);
  if (plan.errors.length > 0) {
    if (plan.actions.length > 0) lines.push('');
    lines.push('Errors (nothing will be applied until they are resolved):');
    for (const error of plan.errors) lines.push(`  ! ${error.message.replace(/\n/g, '\n    ')}`);
  }
  if (plan.actions.length === 0 && plan.errors.length === 0) {
    lines.push('  No changes: the cluster and the registry match the file.');
  } else {
    const count = (symbol: string) => plan.actions.filter((a) => SYMBOL[a.type] === symbol).length;
    lines.push('', `Plan: ${count('+')} to add, ${count('~')} to change, ${count('-')} to delete; ${plan.errors.length} error(s).`);
  }
  return `${lines.join('\n')}\n`;
}

/** --json: actions without the schema text (the file is named), errors as they are. */
export function planJson(plan: Plan): string {
  const actions = plan.actions.map((a) =>
    a.type === 'register-schema'
      ? {
          type: a.type,
          subject: a.subject,
          topic: a.topic,
          file: a.file,
          newSubject: a.newSubject,
          ...(a.contract ? { contract: a.contract } : {}),
          ...(a.contractChanges ? { contractChanges: a.contractChanges } : {}),
        }
      : a,
  );
  return `${JSON.stringify({ actions, errors: plan.errors }, null, 2)}\n`;
}

export function formatApplyResult(result: ApplyResult, failure?: string): string {
  const lines: string[] = [];
  for (const action of result.applied) lines.push(`  done    ${describeAction(action)}`);
  if (result.failed) lines.push(`  FAILED  ${describeAction(result.failed.action)}: ${failure ?? 'see the log'}`);
  for (const action of result.notApplied) lines.push(`  skipped ${describeAction(action)}`);
  lines.push(
    '',
    result.failed
      ? `Apply stopped at the first failure: ${result.applied.length} applied, 1 failed, ${result.notApplied.length} not attempted. Fix the cause and run apply again; it plans afresh.`
      : `Apply complete: ${result.applied.length} change(s) applied.`,
  );
  return `${lines.join('\n')}\n`;
}
