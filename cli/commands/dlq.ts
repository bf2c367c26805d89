import { Command, InvalidArgumentError, Option } from 'commander';
import { deadLetterSummary, filterContext, formatDeadLetter, readDeadLetters, replayDeadLetters, replayTargets } from '../../consumers/dead-letters.ts';
import { DeadLetterReplayError } from '../../core/errors.ts';
import { loadTopology } from '../../topology/load.ts';
import { topicByName } from '../../topology/model.ts';
import { compileFilter } from '../../reads/filter.ts';
import { commandContext, withKafkaAdmin, write } from './context.ts';

/** `sluice dlq inspect|replay`: list dead letters with their error headers; re-produce them to their original topic. */

function limit(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('expected a whole number from 1');
  return Number(value);
}

export function register(program: Command): void {
  const dlq = program.command('dlq').description('dead-letter topics: inspect records and their error headers, replay them');

  dlq
    .command('inspect <dlq-topic>')
    .description('list the dead letters on a topic with their error class, code, message, origin and replay state')
    .option('--where <filter>', 'only records matching this expression (as sluice tail: headers["sluice.error.class"] == "TypeError")')
    .option('--limit <n>', 'list at most this many', limit)
    .addOption(new Option('--json', 'one JSON object per line'))
    .action(async (topic: string, flags: { where?: string; limit?: number; json?: boolean }, command: Command) => {
      const ctx = commandContext(command);
      const filter = flags.where === undefined ? undefined : compileFilter(flags.where);
      await withKafkaAdmin(ctx, async (kafka, admin) => {
        const letters = await readDeadLetters({ kafka, admin, log: ctx.log, topic });
        let shown = 0;
        for (const letter of letters) {
          if (flags.limit !== undefined && shown >= flags.limit) break;
          if (filter && !filter(await filterContext(letter, topic, ctx.registry))) continue;
          write(`${flags.json ? JSON.stringify(deadLetterSummary(letter)) : formatDeadLetter(letter)}\n`);
          shown++;
        }
        if (!flags.json) write(`${shown} of ${letters.length} dead letter(s) on ${topic}\n`);
      });
    });

  dlq
    .command('replay <dlq-topic>')
    .description('re-produce dead letters to their original topic (original key, bytes and headers, plus sluice.replay.of); never twice')
    .option('--to <topic>', "produce to this topic (one the topology declares) instead of each record's original topic")
    .option('--where <filter>', 'only records matching this expression (as sluice tail)')
    .option('--dry-run', 'list what would be replayed, produce nothing')
    .action(async (topic: string, flags: { to?: string; where?: string; dryRun?: boolean }, command: Command) => {
      const ctx = commandContext(command);
      const filter = flags.where === undefined ? undefined : compileFilter(flags.where);
      // Only back into the topology: the topics whose records dead-letter here, or a topology topic the operator names.
      const topology = loadTopology(ctx.config.topologyFile);
      if (flags.to !== undefined && !topicByName(topology, flags.to)) throw new DeadLetterReplayError(`--to ${flags.to}: not a topic of the topology (${topology.file})`);
      const targets = flags.to === undefined ? replayTargets(topology, topic) : new Set([flags.to]);
      await withKafkaAdmin(ctx, async (kafka, admin) => {
        const result = await replayDeadLetters({
          targets,
          kafka,
          admin,
          log: ctx.log,
          topic,
          registry: ctx.registry,
          dryRun: flags.dryRun === true,
          ...(flags.to === undefined ? {} : { to: flags.to }),
          ...(filter === undefined ? {} : { filter }),
        });
        const verb = flags.dryRun ? 'would replay' : 'replayed';
        for (const { letter, to } of result.replayed) write(`${verb} ${topic} ${letter.partition}/${letter.offset} -> ${to}  key=${letter.key?.toString('utf8') ?? '(null)'}\n`);
        write(`${verb} ${result.replayed.length} dead letter(s); ${result.alreadyReplayed.length} already replayed (skipped); ${result.filteredOut} not matching --where\n`);
      });
    });
}
