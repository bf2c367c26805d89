import { MIN_INSYNC_CONFIG, minInsyncReplicas, replicationFactor, replicationProblem, type Replication, type ReplicationSetting } from '../broker/replication.ts';

/**
 * Replication of the topology's topics, from the number of brokers the
 * cluster reports: their `replicationFactor` and `minInsyncReplicas`, `auto`
 * by default (internal topics are always `auto`: broker/replication.ts). The
 * factor and min.insync.replicas travel together, as a topic's replica count
 * and its config, so an acks=all write survives one replica down on three brokers.
 */

/** What a topic created now on a cluster of `brokers` gets, or why the cluster cannot hold it. */
export function resolveReplication(
  brokers: number,
  factorSetting: ReplicationSetting = 'auto',
  minInsyncSetting: ReplicationSetting = 'auto',
): { replication: Replication; problem?: string } | { problem: string; replication?: undefined } {
  const factor = replicationFactor(brokers, factorSetting);
  if (minInsyncSetting !== 'auto' && minInsyncSetting > factor) {
    return { problem: `min.insync.replicas ${minInsyncSetting} exceeds the replication factor ${factor}, so no acks=all write could succeed` };
  }
  const problem = replicationProblem(brokers, factor);
  if (problem) return { problem };
  return { replication: { replicationFactor: factor, configs: { [MIN_INSYNC_CONFIG]: String(minInsyncReplicas(factor, minInsyncSetting)) } } };
}

/**
 * Whether an existing topic's factor satisfies the setting. `auto` accepts any
 * factor at least what the brokers reachable now can hold: with one broker of
 * three down the cluster reports two, and an RF 3 topic is under-replicated, not changed.
 */
export function factorSatisfied(setting: ReplicationSetting, brokers: number, live: number): boolean {
  return setting === 'auto' ? live >= replicationFactor(Math.max(1, brokers)) : live === setting;
}
