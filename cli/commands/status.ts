import type { Command } from 'commander';
import { formatGroupStatus, groupStatus } from '../../consumers/group-status.ts';
import { loadTopology } from '../../topology/load.ts';
import { commandContext, withKafkaAdmin, write } from './context.ts';

/** `sluice status`: each worker's consumer group, its members, their partitions and the lag. */

export function register(program: Command): void {
  program
    .command('status')
    .description("print each worker's consumer group: members, partition assignment and lag")
    .option('--json', 'one JSON object per group')
    .action(async (flags: { json?: boolean }, command: Command) => {
      const ctx = commandContext(command);
      const topology = loadTopology(ctx.config.topologyFile);
      await withKafkaAdmin(ctx, async (_kafka, admin) => {
        for (const worker of topology.workers) {
          const status = await groupStatus(admin, worker.groupId, [worker.input]);
          write(flags.json ? `${JSON.stringify({ worker: worker.name, delivery: worker.delivery, ...status })}\n` : formatGroupStatus(status, `worker ${worker.name} (${worker.delivery})`));
        }
      });
    });
}
