import { relative } from 'node:path';
import type { RegistryClient } from '../core/registry-client.ts';
import { schemaTypeOf, type Topology } from '../topology/model.ts';
import { subjectStatus } from '../topology/subject-status.ts';

/**
 * `sluice schemas check`: each schema file (.avsc, .json, .proto) of the topology against its subject's
 * versions in the registry, under the level the subject will have (the file's
 * `compatibility`, else the subject's, else the global one).
 */

export type CheckOutcome = 'registered' | 'compatible' | 'new-subject' | 'incompatible';

export interface SchemaCheck {
  subject: string;
  file: string;
  level: string;
  outcome: CheckOutcome;
  reasons: string[];
}

export async function checkSchemas(topology: Topology, registry: RegistryClient): Promise<SchemaCheck[]> {
  const results: SchemaCheck[] = [];
  for (const topic of topology.topics) {
    const value = topic.valueSchema;
    if (!value) continue;
    const status = await subjectStatus(registry, value.subject, value.text, topic.compatibility, schemaTypeOf(value), value.contract);
    const outcome: CheckOutcome = status.registered ? 'registered' : !status.exists ? 'new-subject' : status.incompatibilities.length > 0 ? 'incompatible' : 'compatible';
    results.push({ subject: value.subject, file: value.file, level: status.checkedLevel, outcome, reasons: status.incompatibilities });
  }
  return results;
}

const SUMMARY: Record<CheckOutcome, string> = {
  registered: 'ok    already registered',
  compatible: 'ok    compatible, would be a new version',
  'new-subject': 'ok    new subject, nothing to be compatible with',
  incompatible: 'FAIL  incompatible',
};

export function formatChecks(checks: readonly SchemaCheck[]): string {
  const lines = checks.map((c) => {
    const head = `${SUMMARY[c.outcome]}  ${c.subject} <- ${relative(process.cwd(), c.file) || c.file} (${c.level})`;
    return c.reasons.length === 0 ? head : `${head}\n${c.reasons.map((r) => `        ${r}`).join('\n')}`;
  });
  const failed = checks.filter((c) => c.outcome === 'incompatible').length;
  lines.push('', failed === 0 ? `${checks.length} schema(s) checked: all compatible.` : `${failed} of ${checks.length} schema(s) incompatible.`);
  return `${lines.join('\n')}\n`;
}
