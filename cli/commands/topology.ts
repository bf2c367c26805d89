import { writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { describeCause } from '../../core/errors.ts';
import { applyPlan } from '../../topology/apply.ts';
import { formatApplyResult, formatPlan, planJson } from '../../topology/format.ts';
import { lineageGraph, toMermaid, toSvg, toHtml } from '../../topology/graph.ts';
import { gatherLive } from '../../topology/live.ts';
import { loadTopology } from '../../topology/load.ts';
import { topologyName } from '../../topology/model.ts';
import { planTopology } from '../../topology/plan.ts';
import { commandContext, withKafkaAdmin, write, type CommandContext } from './context.ts';

/** Exit codes for CI, as terraform's: 0 nothing to do, 1 errors, 2 changes pending (with --detailed-exitcode). */
const EXIT_ERRORS = 1;
const EXIT_PENDING = 2;

async function makePlan(ctx: CommandContext, allowDelete: boolean) {
  const topology = loadTopology(ctx.config.topologyFile);
  return withKafkaAdmin(ctx, async (kafka, admin) => {
    const live = await gatherLive(topology, { admin, registry: ctx.registry, state: { kafka, topic: ctx.config.topologyStateTopic } });
    return { topology, plan: planTopology(topology, live, { allowDelete }) };
  });
}

async function confirmed(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(question)).trim() === 'yes';
  } finally {
    rl.close();
  }
}

export function register(program: Command): void {
  const topology = program.command('topology').description('topology as code: plan and apply the topology file, draw its lineage');

  topology
    .command('plan')
    .description('compare the topology file with the cluster and the registry and list what apply would do')
    .option('--json', 'print {"actions": [...], "errors": [...]}')
    .option('--detailed-exitcode', 'exit 2 when there are changes to apply (0 none, 1 errors)')
    .option('--allow-delete', 'plan to delete topics removed from the file instead of refusing')
    .action(async (flags: { json?: boolean; detailedExitcode?: boolean; allowDelete?: boolean }, command: Command) => {
      const ctx = commandContext(command);
      const { topology: model, plan } = await makePlan(ctx, flags.allowDelete === true);
      write(flags.json ? planJson(plan) : formatPlan(plan, topologyName(model), model.file));
      if (plan.errors.length > 0) process.exitCode = EXIT_ERRORS;
      else if (plan.actions.length > 0 && flags.detailedExitcode) process.exitCode = EXIT_PENDING;
    });

  topology
    .command('apply')
    .description('carry out the plan (asks for confirmation on a terminal) and record the topics this topology manages')
    .option('--auto-approve', 'do not ask for confirmation')
    .option('--allow-delete', 'delete topics removed from the file')
    .action(async (flags: { autoApprove?: boolean; allowDelete?: boolean }, command: Command) => {
      const ctx = commandContext(command);
      const model = loadTopology(ctx.config.topologyFile);
      await withKafkaAdmin(ctx, async (kafka, admin) => {
        const live = await gatherLive(model, { admin, registry: ctx.registry, state: { kafka, topic: ctx.config.topologyStateTopic } });
        const plan = planTopology(model, live, { allowDelete: flags.allowDelete === true });
        write(formatPlan(plan, topologyName(model), model.file));
        if (plan.errors.length > 0) {
          write('\nNothing was applied.\n');
          process.exitCode = EXIT_ERRORS;
          return;
        }
        // Only a person at a terminal can answer; scripts and CI proceed (as with --auto-approve).
        if (plan.actions.length > 0 && !flags.autoApprove && process.stdin.isTTY && !(await confirmed('\nApply these changes? Only "yes" is accepted: '))) {
          write('Apply cancelled; nothing was applied.\n');
          process.exitCode = EXIT_ERRORS;
          return;
        }
        const result = await applyPlan(model, plan, { admin, kafka, registry: ctx.registry, log: ctx.log, stateTopic: ctx.config.topologyStateTopic });
        if (plan.actions.length > 0 || result.failed) write(`\n${formatApplyResult(result, result.failed && describeCause(result.failed.error))}`);
        if (result.failed) process.exitCode = EXIT_ERRORS;
      });
    });

  topology
    .command('graph')
    .description('print the lineage (routes -> topics -> workers -> topics) as Mermaid and write it as a picture')
    .option('--out <file>', 'picture to write: .svg, or .html (SVG plus the Mermaid source)', 'lineage.svg')
    .option('--no-out', 'print the Mermaid only')
    .action((flags: { out: string | false }, command: Command) => {
      const ctx = commandContext(command);
      const model = loadTopology(ctx.config.topologyFile);
      const graph = lineageGraph(model);
      write(toMermaid(graph));
      if (flags.out === false) return;
      writeFileSync(flags.out, flags.out.endsWith('.html') ? toHtml(graph, topologyName(model)) : toSvg(graph));
      process.stderr.write(`wrote ${flags.out}\n`);
    });
}
