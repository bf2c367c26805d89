import { relative } from 'node:path';
import type { Command } from 'commander';
import { checkSchemas, formatChecks } from '../../contracts/check.ts';
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
