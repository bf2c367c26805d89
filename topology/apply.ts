import type { Kafka, KafkaAdmin, TopicSpec } from '../kafka/index.ts';
import { SluiceError, describeCause } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { RegistryClient } from '../core/registry-client.ts';
import { gatherLive } from './live.ts';
import { schemaTypeOf, topologyName, type Topology } from './model.ts';
import { planTopology, type ApplyResult, type Plan, type PlanAction } from './plan.ts';
import { writeAppliedState } from './state.ts';
import { describeAction } from './format.ts';

export interface ApplyContext {
  admin: KafkaAdmin;
  registry: RegistryClient;
  log: Logger;
}

function topicSpec(action: Extract<PlanAction, { type: 'create-topic' }>): TopicSpec {
  return { name: action.topic, partitions: action.partitions, replicationFactor: action.replicationFactor, configs: action.configs };
}

async function run(action: PlanAction, ctx: ApplyContext): Promise<void> {
  const { admin, registry } = ctx;
  switch (action.type) {
    case 'create-topic':
      if ((await admin.createTopics([topicSpec(action)])).length === 0) {
        throw new SluiceError('SLUICE_TOPIC_EXISTS', `topic ${action.topic} was created by someone else since the plan was made`);
      }
      return;
    case 'add-partitions':
      await admin.createPartitions(action.topic, action.to);
      return;
    case 'alter-topic-configs':
      // Incremental: the topic's other settings stay as they are.
      await admin.alterTopicConfigs(action.topic, Object.fromEntries(action.changes.map((c) => [c.name, c.to])));
      return;
    case 'delete-topic':
      await admin.deleteTopics([action.topic]);
      return;
    case 'set-compatibility':
      await registry.request('PUT', `/config/${encodeURIComponent(action.subject)}`, { compatibility: action.to });
      return;
    case 'register-schema':
      await registry.register(action.subject, action.schema, { schemaType: action.schemaType ?? 'AVRO', ...action.contract });
      return;
  }
}

/** Carries out the actions in order and stops at the first failure. */
export async function executePlan(actions: readonly PlanAction[], ctx: ApplyContext): Promise<ApplyResult> {
  const applied: PlanAction[] = [];
  for (const [i, action] of actions.entries()) {
    try {
      await run(action, ctx);
    } catch (error) {
      ctx.log.error({ err: error, action: describeAction(action) }, 'topology action failed');
      return { applied, failed: { action, error }, notApplied: actions.slice(i + 1) };
    }
    applied.push(action);
    ctx.log.info({ action: describeAction(action) }, 'applied');
  }
  return { applied, notApplied: [] };
}

/** `sluice topology apply`: the plan, carried out, then recorded as the topology's applied state. */
export async function applyPlan(topology: Topology, plan: Plan, ctx: ApplyContext & { kafka: Kafka; stateTopic: string }): Promise<ApplyResult> {
  if (plan.errors.length > 0) {
    throw new SluiceError('SLUICE_PLAN_HAS_ERRORS', `the plan has ${plan.errors.length} error(s); nothing was applied`);
  }
  const result = await executePlan(plan.actions, ctx);
  if (!result.failed)
    await writeAppliedState(
      ctx.kafka,
      ctx.admin,
      ctx.stateTopic,
      topologyName(topology),
      topology.topics.map((t) => t.name),
    );
  return result;
}

export interface AppliedTopology {
  createdTopics: string[];
  /** Registered schema id per topic with a valueSchema. */
  schemaIds: Map<string, number>;
}

/** What `sluice up` may do unasked: add what is missing, never change or remove what exists. */
const AT_START: ReadonlySet<PlanAction['type']> = new Set(['create-topic', 'set-compatibility', 'register-schema']);

/**
 * Brings the cluster up to the topology at start: creates the missing topics,
 * sets subject levels and registers each value schema. An incompatible schema
 * stops start-up with the registry's reasons; other differences (partitions,
 * configs) are left to `sluice topology apply` and only logged.
 */
export async function applyTopology(topology: Topology, admin: KafkaAdmin, registry: RegistryClient, log: Logger): Promise<AppliedTopology> {
  const plan = planTopology(topology, await gatherLive(topology, { admin, registry }));
  const incompatible = plan.errors.filter((e) => e.type === 'incompatible-schema');
  if (incompatible.length > 0) throw new SluiceError('SLUICE_SCHEMA_INCOMPATIBLE', incompatible.map((e) => e.message).join('\n'));
  for (const error of plan.errors) log.warn({ problem: error.type, topic: error.topic }, error.message);
  const deferred = plan.actions.filter((a) => !AT_START.has(a.type));
  if (deferred.length > 0) log.warn({ actions: deferred.map(describeAction) }, 'the topology differs from the cluster; run `sluice topology plan` to review');

  const result = await executePlan(
    plan.actions.filter((a) => AT_START.has(a.type)),
    { admin, registry, log },
  );
  if (result.failed) {
    throw new SluiceError('SLUICE_TOPOLOGY_APPLY_FAILED', `${describeAction(result.failed.action)} failed: ${describeCause(result.failed.error)}`, {
      cause: result.failed.error,
    });
  }
  const schemaIds = new Map<string, number>();
  for (const topic of topology.topics) {
    if (!topic.valueSchema) continue;
    // Registering an already registered schema only looks its id up.
    schemaIds.set(topic.name, await registry.register(topic.valueSchema.subject, topic.valueSchema.text, { schemaType: schemaTypeOf(topic.valueSchema) }));
  }
  return { createdTopics: result.applied.flatMap((a) => (a.type === 'create-topic' ? [a.topic] : [])), schemaIds };
}
