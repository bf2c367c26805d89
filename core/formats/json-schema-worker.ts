import { parentPort } from 'node:worker_threads';
import { jsonValidatorCode } from './json-schema.ts';
import type { ResolvedSchema } from './types.ts';

/** The thread json-schema-compiler.ts compiles JSON Schemas on: one schema in, its validator's code (or ajv's refusal) out. */
export interface CompileJob {
  id: number;
  resolved: ResolvedSchema;
}
export type CompileAnswer = { id: number; code: string } | { id: number; error: string };

parentPort?.on('message', (job: CompileJob) => {
  let answer: CompileAnswer;
  try {
    answer = { id: job.id, code: jsonValidatorCode(job.resolved) };
  } catch (error) {
    answer = { id: job.id, error: error instanceof Error ? error.message : String(error) };
  }
  parentPort?.postMessage(answer);
});
