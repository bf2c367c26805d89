import type { CompatibilityLevel } from '../registry/compatibility.ts';
import type { SchemaType } from '../core/formats/types.ts';
import { contractChanges } from './contract-diff.ts';
import { schemaTypeOf, type DeclaredContract, type TopicSpec, type Topology } from './model.ts';
import { MIN_INSYNC_CONFIG } from '../broker/replication.ts';
import { factorSatisfied, resolveReplication } from './replication.ts';

/**
 * The plan: what `apply` would change to bring the cluster and the registry to
 * the topology file, and what it refuses to do. A pure function of the file
 * and a snapshot of the live state, so every rule is unit-tested without Kafka.
 */

export interface LiveTopic {
  partitions: number;
  replicationFactor: number;
  /** The topic's configs as the broker reports them (only the ones the file names are compared). */
  configs: Record<string, string>;
}

export interface LiveSubject {
  /** The subject has at least one live version. */
  exists: boolean;
  /** The file's schema is already a version of the subject. */
  registered: boolean;
  /** Level set on the subject itself; undefined when the global level applies. */
  compatibility?: CompatibilityLevel;
  /** Why the file's schema cannot join the subject under the level it will have; empty when it can. */
  incompatibilities: string[];
  /** The latest version's contract, read when the file declares one that is not registered yet. */
  latestContract?: DeclaredContract;
}

export interface LiveSnapshot {
  /** Brokers the cluster reports now (a stopped one is not counted): what `auto` resolves against. */
  brokers: number;
  topics: ReadonlyMap<string, LiveTopic>;
  subjects: ReadonlyMap<string, LiveSubject>;
  /** Topics the last apply of this topology managed; undefined when it was never applied. */
  managedTopics?: readonly string[];
  /** Workers pinned by `input.useLatestWithMetadata` whose properties no version of their input subject has. */
  unmatchedPins?: readonly string[];
}

export interface ConfigChange {
  name: string;
  /** undefined when the topic has no value for it (it was never set and has no broker default). */
  from?: string;
  to: string;
}

export type PlanAction =
  | { type: 'create-topic'; topic: string; partitions: number; replicationFactor: number; configs: Record<string, string> }
  | { type: 'add-partitions'; topic: string; from: number; to: number }
  | { type: 'alter-topic-configs'; topic: string; changes: ConfigChange[] }
  | { type: 'delete-topic'; topic: string }
  | { type: 'set-compatibility'; subject: string; from?: CompatibilityLevel; to: CompatibilityLevel }
  | {
      type: 'register-schema';
      subject: string;
      topic: string;
      file: string;
      schema: string;
      schemaType?: SchemaType;
      newSubject: boolean;
      /** The version's declared metadata and rules, registered with the schema. */
      contract?: DeclaredContract;
      /** What the declared contract changes against the latest version (`+ domain rule positive-amount ...`). */
      contractChanges?: string[];
    };

export type PlanErrorType = 'fewer-partitions' | 'replication-factor-changed' | 'replication-unavailable' | 'topic-removed' | 'incompatible-schema' | 'pinned-version-missing';

export interface PlanError {
  type: PlanErrorType;
  topic?: string;
  subject?: string;
  message: string;
}

export interface Plan {
  actions: PlanAction[];
  errors: PlanError[];
}

/** What became of a plan's actions when applied (topology/apply.ts), in order. */
export interface ApplyResult {
  applied: PlanAction[];
  /** The action that failed and why; the rest of the plan was not attempted. */
  failed?: { action: PlanAction; error: unknown };
  notApplied: PlanAction[];
}

export interface PlanOptions {
  /** Turn topics removed from the file into delete actions instead of errors. */
  allowDelete?: boolean;
}

function configChanges(wanted: Record<string, string>, live: Record<string, string>): ConfigChange[] {
  return Object.entries(wanted)
    .filter(([name, value]) => live[name] !== value)
    .map(([name, to]) => (live[name] === undefined ? { name, to } : { name, from: live[name], to }));
}

/** The configs the file asks for, min.insync.replicas included (from minInsyncReplicas unless configs names it). */
function wantedConfigs(topic: TopicSpec, minInsync: string | undefined): Record<string, string> {
  return topic.configs[MIN_INSYNC_CONFIG] === undefined && minInsync !== undefined ? { ...topic.configs, [MIN_INSYNC_CONFIG]: minInsync } : { ...topic.configs };
}

/** `orders.placed` or `topology.yaml:9: orders.placed`: errors the file cannot show by itself point at it. */
function where(topic: TopicSpec): string {
  return topic.location === undefined ? topic.name : `${topic.location}: ${topic.name}`;
}

export function planTopology(topology: Topology, live: LiveSnapshot, options: PlanOptions = {}): Plan {
  const actions: PlanAction[] = [];
  const errors: PlanError[] = [];

  for (const topic of topology.topics) {
    const current = live.topics.get(topic.name);
    const resolved = resolveReplication(live.brokers, topic.replicationFactor, topic.minInsyncReplicas);
    if (!current) {
      if (!resolved.replication) {
        errors.push({ type: 'replication-unavailable', topic: topic.name, message: `${where(topic)}: ${resolved.problem}` });
        continue;
      }
      actions.push({
        type: 'create-topic',
        topic: topic.name,
        partitions: topic.partitions,
        replicationFactor: resolved.replication.replicationFactor,
        configs: wantedConfigs(topic, resolved.replication.configs[MIN_INSYNC_CONFIG]),
      });
      continue;
    }
    if (topic.partitions < current.partitions) {
      errors.push({
        type: 'fewer-partitions',
        topic: topic.name,
        message: `${topic.name}: the file asks for ${topic.partitions} partitions but the topic has ${current.partitions}; Kafka cannot remove partitions (recreate the topic under a new name and migrate instead)`,
      });
    } else if (topic.partitions > current.partitions) {
      actions.push({ type: 'add-partitions', topic: topic.name, from: current.partitions, to: topic.partitions });
    }
    if (!factorSatisfied(topic.replicationFactor, live.brokers, current.replicationFactor)) {
      const asked =
        topic.replicationFactor === 'auto'
          ? `replication factor auto (${resolved.replication?.replicationFactor ?? Math.min(3, live.brokers)} on ${live.brokers} brokers)`
          : `replication factor ${topic.replicationFactor}`;
      errors.push({
        type: 'replication-factor-changed',
        topic: topic.name,
        message: `${where(topic)}: the file asks for ${asked} but the topic has ${current.replicationFactor}; changing it needs a partition reassignment, which Sluice does not do`,
      });
    }
    // min.insync.replicas follows the topic's own factor, whatever the brokers reachable now.
    const minInsync = resolveReplication(Math.max(live.brokers, current.replicationFactor), current.replicationFactor, topic.minInsyncReplicas);
    if (!minInsync.replication) {
      errors.push({ type: 'replication-unavailable', topic: topic.name, message: `${where(topic)}: ${minInsync.problem}` });
    }
    const changes = configChanges(wantedConfigs(topic, minInsync.replication?.configs[MIN_INSYNC_CONFIG]), current.configs);
    if (changes.length > 0) actions.push({ type: 'alter-topic-configs', topic: topic.name, changes });
  }

  const declared = new Set(topology.topics.map((t) => t.name));
  for (const name of live.managedTopics ?? []) {
    if (declared.has(name) || !live.topics.has(name)) continue;
    if (options.allowDelete) {
      actions.push({ type: 'delete-topic', topic: name });
    } else {
      errors.push({
        type: 'topic-removed',
        topic: name,
        message: `${name}: removed from the file but still on the cluster; deleting it loses its data and breaks its consumers (run with --allow-delete to delete it)`,
      });
    }
  }

  for (const topic of topology.topics) {
    const value = topic.valueSchema;
    if (!value) continue;
    const subject = live.subjects.get(value.subject) ?? { exists: false, registered: false, incompatibilities: [] };
    if (topic.compatibility !== undefined && topic.compatibility !== subject.compatibility) {
      actions.push({
        type: 'set-compatibility',
        subject: value.subject,
        to: topic.compatibility,
        ...(subject.compatibility === undefined ? {} : { from: subject.compatibility }),
      });
    }
    if (subject.registered) continue;
    if (subject.incompatibilities.length > 0) {
      errors.push({
        type: 'incompatible-schema',
        topic: topic.name,
        subject: value.subject,
        message: `${value.subject}: ${value.file} is incompatible with the registered versions:\n  ${subject.incompatibilities.join('\n  ')}`,
      });
      continue;
    }
    const schemaType = schemaTypeOf(value);
    const changes = value.contract ? contractChanges(value.contract, subject.latestContract) : [];
    actions.push({
      type: 'register-schema',
      subject: value.subject,
      topic: topic.name,
      file: value.file,
      schema: value.text,
      ...(schemaType === 'AVRO' ? {} : { schemaType }),
      newSubject: !subject.exists,
      ...(value.contract ? { contract: value.contract } : {}),
      ...(changes.length > 0 ? { contractChanges: changes } : {}),
    });
  }

  for (const worker of topology.workers) {
    const pin = worker.useLatestWithMetadata;
    if (!pin || !live.unmatchedPins?.includes(worker.name)) continue;
    // The version this plan registers counts: apply makes it before the worker starts.
    const registered = actions.find((a): a is Extract<PlanAction, { type: 'register-schema' }> => a.type === 'register-schema' && a.topic === worker.input);
    const properties = registered?.contract?.metadata?.properties ?? {};
    if (Object.entries(pin).every(([key, value]) => properties[key] === value)) continue;
    const wanted = Object.entries(pin)
      .map(([key, value]) => `${key}=${value}`)
      .join(', ');
    errors.push({
      type: 'pinned-version-missing',
      topic: worker.input,
      message: `${worker.location === undefined ? '' : `${worker.location}: `}worker ${worker.name} reads with input.useLatestWithMetadata ${wanted}, but no version of ${worker.input}-value has these metadata properties (nor does the file's schema); the worker would not start`,
    });
  }

  return { actions, errors };
}
