import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { faultsConfig } from './cluster.ts';

/**
 * Figures a fault test measured (counts, p99, RSS), appended as one JSON line to
 * <SLUICE_DATA_DIR>/faults-report.jsonl: the test output stays quiet and the
 * numbers are still there to quote.
 */
export function report(test: string, figures: Record<string, unknown>): void {
  const dir = faultsConfig().dataDir;
  mkdirSync(dir, { recursive: true });
  appendFileSync(join(dir, 'faults-report.jsonl'), `${JSON.stringify({ at: new Date().toISOString(), test, ...figures })}\n`);
}
