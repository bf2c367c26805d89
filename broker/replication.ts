/**
 * Replication defaults for a cluster of `brokers` nodes: `auto` is the usual
 * production shape (3 replicas, 2 in sync) where the cluster can hold it, and
 * the most it can hold where it cannot. Topology and internal topics (offsets,
 * transaction state, _schemas) take their factors from here.
 */

export type ReplicationSetting = number | 'auto';

/** Replicas per partition: `auto` = min(3, brokers); an explicit number is kept as asked (the caller checks it against the cluster). */
export function replicationFactor(brokers: number, setting: ReplicationSetting = 'auto'): number {
  if (!Number.isInteger(brokers) || brokers < 1) throw new RangeError(`a cluster has at least one broker, got ${brokers}`);
  if (setting === 'auto') return Math.min(3, brokers);
  if (!Number.isInteger(setting) || setting < 1) throw new RangeError(`a replication factor is a whole number from 1, got ${setting}`);
  return setting;
}

/** In-sync replicas an acks=all write needs: `auto` = RF − 1, at least 1, so one replica may be down without refusing writes. */
export function minInsyncReplicas(factor: number, setting: ReplicationSetting = 'auto'): number {
  if (!Number.isInteger(factor) || factor < 1) throw new RangeError(`a replication factor is a whole number from 1, got ${factor}`);
  if (setting === 'auto') return Math.max(1, factor - 1);
  if (!Number.isInteger(setting) || setting < 1 || setting > factor) throw new RangeError(`min.insync.replicas must be from 1 to the replication factor ${factor}, got ${setting}`);
  return setting;
}

/** Why `factor` cannot be held by a cluster of `brokers` nodes, or undefined when it can. */
export function replicationProblem(brokers: number, factor: number): string | undefined {
  return factor > brokers ? `replication factor ${factor} needs at least ${factor} brokers; the cluster has ${brokers}` : undefined;
}

export const MIN_INSYNC_CONFIG = 'min.insync.replicas';

/** A topic's replica count and its min.insync.replicas travel together, so an acks=all write survives one replica down on three brokers. */
export interface Replication {
  replicationFactor: number;
  /** The topic's min.insync.replicas, as a config value. */
  configs: Record<string, string>;
}

/**
 * Internal topics (`_schemas`, `_sluice_topology`, dead-letter ledgers): `auto` on both, which any cluster of at
 * least one broker holds.
 */
export function internalReplication(brokers: number): Replication {
  const factor = replicationFactor(Math.max(1, brokers));
  return { replicationFactor: factor, configs: { [MIN_INSYNC_CONFIG]: String(minInsyncReplicas(factor)) } };
}
