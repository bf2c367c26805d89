import { relative } from 'node:path';
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { BadRequestError } from '../../core/errors.ts';
import { parseJson, stringifyJson } from '../../core/json.ts';
import { checkSchemas, formatChecks } from '../../contracts/check.ts';
import { formatRuleTest, passes, testRules } from '../../contracts/rule-test.ts';
import { generateForTopology, staleFiles, writeGenerated } from '../../contracts/codegen.ts';
import { loadTopology } from '../../topology/load.ts';
import { commandContext, write } from './context.ts';

export function register(program: Command): void {
  const schemas = program.command('schemas').description('the contracts (Avro, JSON Schema, Protobuf): compatibility checks and generated TypeScript types');

  schemas
    .command('check')
    .description('check every schema of the topology against its subject in the registry (exit 1 when one is incompatible)')
    .option('--json', 'print the results as JSON')
    .action(async (flags: { json?: boolean }, command: Command) => {
      const ctx = commandContext(command);
      const checks = await checkSchemas(loadTopology(ctx.config.topologyFile), ctx.registry);
      write(flags.json ? `${JSON.stringify({ checks }, null, 2)}\n` : formatChecks(checks));
      if (checks.some((c) => c.outcome === 'incompatible')) process.exitCode = 1;
    });

  schemas
    .command('test')
    .description("run an event through a subject version's schema and rules, printing each rule's verdict (exit 1 when the event would not go through)")
    .argument('<subject>', 'the subject, e.g. orders.placed-value')
    .requiredOption('--event <file>', 'the event, a JSON file')
    .option('--version <version>', 'the version whose rules run', 'latest')
    .addOption(new Option('--mode <mode>', 'run the rules a producer runs (WRITE) or a reader (READ)').choices(['WRITE', 'READ']).default('WRITE'))
    .option('--json', 'print the result as JSON')
    .action(async (subject: string, flags: { event: string; version: string; mode: 'WRITE' | 'READ'; json?: boolean }, command: Command) => {
      const ctx = commandContext(command);
      const result = await testRules(ctx.registry, subject, flags.version, readEvent(flags.event), flags.mode);
      write(flags.json ? `${stringifyJson(result, 2)}\n` : formatRuleTest(result));
      if (!passes(result)) process.exitCode = 1;
    });

  schemas
    .command('codegen')
    .description('write TypeScript types for every schema of the topology (.avsc, .json, .proto) into generated/ beside it')
    .option('--check', 'write nothing; exit 1 when a generated file is missing or stale')
    .action((flags: { check?: boolean }, command: Command) => {
      const ctx = commandContext(command);
      const files = generateForTopology(loadTopology(ctx.config.topologyFile));
      const stale = staleFiles(files);
      const shown = (path: string) => relative(process.cwd(), path) || path;
      if (flags.check) {
        write(stale.length === 0 ? `${files.length} generated file(s) up to date.\n` : `stale: ${stale.map((f) => shown(f.path)).join(', ')}\nrun: npx sluice schemas codegen\n`);
        if (stale.length > 0) process.exitCode = 1;
        return;
      }
      writeGenerated(stale);
      write(`${stale.length === 0 ? 'up to date' : `wrote ${stale.map((f) => shown(f.path)).join(', ')}`}\n`);
    });
}

/** The event file, parsed as the ingress parses a body (exact big integers); a syntax error names the file and its line. */
function readEvent(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new BadRequestError(`${file}: cannot read the event: ${(error as Error).message}`);
  }
  try {
    return parseJson(text, 128);
  } catch (error) {
    throw new BadRequestError(`${file}: not JSON: ${(error as Error).message}`);
  }
}
