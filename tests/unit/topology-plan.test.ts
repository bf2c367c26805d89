import type { Schema } from 'avsc';
import { describe, expect, it } from 'vitest';
import { formatPlan, planJson } from '../../topology/format.ts';
import type { DeclaredContract, TopicSpec, Topology } from '../../topology/model.ts';
import { planTopology, type LiveSnapshot, type LiveSubject, type LiveTopic } from '../../topology/plan.ts';

const schema: Schema = { type: 'record', name: 'E', fields: [{ name: 'id', type: 'string' }] };

function topic(name: string, extra: Partial<TopicSpec> = {}): TopicSpec {
  return { name, partitions: 3, replicationFactor: 1, configs: { 'retention.ms': '1000' }, ...extra };
}

function withSchema(name: string, extra: Partial<TopicSpec> = {}): TopicSpec {
  return topic(name, { valueSchema: { file: `/x/${name}.avsc`, subject: `${name}-value`, schema, text: JSON.stringify(schema) }, ...extra });
}

function topology(topics: TopicSpec[]): Topology {
  return { file: '/x/t.topology.yaml', name: 't', topics, routes: [], workers: [] };
}

const liveTopic = (extra: Partial<LiveTopic> = {}): LiveTopic => ({
  partitions: 3,
  replicationFactor: 1,
  configs: { 'retention.ms': '1000', 'segment.ms': '5', 'min.insync.replicas': '1' },
  ...extra,
});
const registered: LiveSubject = { exists: true, registered: true, incompatibilities: [] };

function live(topics: Record<string, LiveTopic>, subjects: Record<string, LiveSubject> = {}, managedTopics?: string[], brokers = 1): LiveSnapshot {
  return { brokers, topics: new Map(Object.entries(topics)), subjects: new Map(Object.entries(subjects)), ...(managedTopics ? { managedTopics } : {}) };
}

describe('planTopology', () => {
  it('has nothing to do when the cluster and the registry match the file', () => {
    const plan = planTopology(topology([withSchema('a'), topic('b')]), live({ a: liveTopic(), b: liveTopic() }, { 'a-value': registered }, ['a', 'b']));
    expect(plan).toEqual({ actions: [], errors: [] });
  });

  it('creates a missing topic with its partitions, replication and configs', () => {
    const plan = planTopology(topology([topic('a', { partitions: 6 })]), live({}));
    expect(plan.actions).toEqual([{ type: 'create-topic', topic: 'a', partitions: 6, replicationFactor: 1, configs: { 'retention.ms': '1000', 'min.insync.replicas': '1' } }]);
  });

  it('adds partitions when the file asks for more', () => {
    const plan = planTopology(topology([topic('a', { partitions: 8 })]), live({ a: liveTopic() }));
    expect(plan.actions).toEqual([{ type: 'add-partitions', topic: 'a', from: 3, to: 8 }]);
  });

  it('alters only the configs the file names and that differ', () => {
    const plan = planTopology(topology([topic('a', { configs: { 'retention.ms': '2000', 'cleanup.policy': 'compact', 'segment.ms': '5' } })]), live({ a: liveTopic() }));
    expect(plan.actions).toEqual([
      {
        type: 'alter-topic-configs',
        topic: 'a',
        changes: [
          { name: 'retention.ms', from: '1000', to: '2000' },
          { name: 'cleanup.policy', to: 'compact' },
        ],
      },
    ]);
  });

  it('refuses fewer partitions as an error', () => {
    const plan = planTopology(topology([topic('a', { partitions: 1 })]), live({ a: liveTopic() }));
    expect(plan.actions).toEqual([]);
    expect(plan.errors).toMatchObject([{ type: 'fewer-partitions', topic: 'a' }]);
    expect(plan.errors[0]?.message).toMatch(/asks for 1 partitions but the topic has 3; Kafka cannot remove partitions/);
  });

  it('refuses a changed replication factor as an error', () => {
    const plan = planTopology(topology([topic('a', { replicationFactor: 3 })]), live({ a: liveTopic() }));
    expect(plan.errors).toMatchObject([{ type: 'replication-factor-changed', topic: 'a' }]);
  });

  it('refuses a managed topic removed from the file, or deletes it with allowDelete', () => {
    const snapshot = live({ a: liveTopic(), gone: liveTopic(), other: liveTopic() }, {}, ['a', 'gone']);
    const refused = planTopology(topology([topic('a')]), snapshot);
    expect(refused.errors).toMatchObject([{ type: 'topic-removed', topic: 'gone' }]);
    expect(refused.errors[0]?.message).toMatch(/--allow-delete/);
    const allowed = planTopology(topology([topic('a')]), snapshot, { allowDelete: true });
    expect(allowed).toEqual({ actions: [{ type: 'delete-topic', topic: 'gone' }], errors: [] });
  });

  it('ignores topics it never managed, and managed topics already gone', () => {
    const plan = planTopology(topology([topic('a')]), live({ a: liveTopic(), other: liveTopic() }, {}, ['a', 'vanished']));
    expect(plan).toEqual({ actions: [], errors: [] });
  });

  it('registers a schema for a new subject and for a compatible new version', () => {
    const fresh = planTopology(topology([withSchema('a')]), live({ a: liveTopic() }));
    expect(fresh.actions).toMatchObject([{ type: 'register-schema', subject: 'a-value', newSubject: true }]);
    const next = planTopology(topology([withSchema('a')]), live({ a: liveTopic() }, { 'a-value': { exists: true, registered: false, incompatibilities: [] } }));
    expect(next.actions).toMatchObject([{ type: 'register-schema', subject: 'a-value', newSubject: false }]);
  });

  it('refuses an incompatible schema with the registry reasons', () => {
    const reasons = ['BACKWARD: the new schema cannot read data written with version 1: E.id: TYPE_MISMATCH: reader type int cannot read writer type string'];
    const plan = planTopology(topology([withSchema('a')]), live({ a: liveTopic() }, { 'a-value': { exists: true, registered: false, incompatibilities: reasons } }));
    expect(plan.actions).toEqual([]);
    expect(plan.errors).toMatchObject([{ type: 'incompatible-schema', subject: 'a-value', topic: 'a' }]);
    expect(plan.errors[0]?.message).toContain('E.id: TYPE_MISMATCH');
  });

  it('sets a subject compatibility level before registering under it', () => {
    const plan = planTopology(
      topology([withSchema('a', { compatibility: 'FULL' })]),
      live({ a: liveTopic() }, { 'a-value': { exists: true, registered: false, compatibility: 'BACKWARD', incompatibilities: [] } }),
    );
    expect(plan.actions.map((a) => a.type)).toEqual(['set-compatibility', 'register-schema']);
    expect(plan.actions[0]).toEqual({ type: 'set-compatibility', subject: 'a-value', from: 'BACKWARD', to: 'FULL' });
  });

  it('leaves the level alone when the file sets none or the same', () => {
    const subjects = { 'a-value': { ...registered, compatibility: 'FULL' as const } };
    expect(planTopology(topology([withSchema('a')]), live({ a: liveTopic() }, subjects)).actions).toEqual([]);
    expect(planTopology(topology([withSchema('a', { compatibility: 'FULL' })]), live({ a: liveTopic() }, subjects)).actions).toEqual([]);
  });
});

describe('plan output', () => {
  const plan = planTopology(topology([topic('new', { partitions: 6 }), topic('a', { partitions: 1 })]), live({ a: liveTopic(), gone: liveTopic() }, {}, ['a', 'gone']), { allowDelete: true });

  it('reads like terraform plan', () => {
    const text = formatPlan(plan, 't', '/x/t.topology.yaml');
    expect(text).toContain('  + create topic new (6 partitions, replication factor 1, retention.ms=1000, min.insync.replicas=1)');
    expect(text).toContain('  - delete topic gone (its data is lost)');
    expect(text).toMatch(/Errors \(nothing will be applied until they are resolved\):\n {2}! a: the file asks for 1 partitions/);
    expect(text).toContain('Plan: 1 to add, 0 to change, 1 to delete; 1 error(s).');
    expect(formatPlan({ actions: [], errors: [] }, 't', '/x/t.yaml')).toContain('No changes');
  });

  it('--json is {"actions": [...], "errors": [...]} without schema texts', () => {
    const json = JSON.parse(planJson(planTopology(topology([withSchema('a')]), live({})))) as { actions: Record<string, unknown>[]; errors: unknown[] };
    expect(Object.keys(json)).toEqual(['actions', 'errors']);
    expect(json.actions[1]).toEqual({ type: 'register-schema', subject: 'a-value', topic: 'a', file: '/x/a.avsc', newSubject: true });
  });

  describe('replication', () => {
    const auto = (extra: Partial<TopicSpec> = {}): TopicSpec => topic('a', { replicationFactor: 'auto', minInsyncReplicas: 'auto', location: 't.yaml:4', ...extra });

    it('resolves auto to min(3, brokers) and min.insync.replicas to RF - 1, at least 1', () => {
      const created = (brokers: number) => planTopology(topology([auto()]), live({}, {}, undefined, brokers)).actions[0];
      expect(created(1)).toMatchObject({ type: 'create-topic', replicationFactor: 1, configs: { 'min.insync.replicas': '1' } });
      expect(created(2)).toMatchObject({ replicationFactor: 2, configs: { 'min.insync.replicas': '1' } });
      expect(created(3)).toMatchObject({ replicationFactor: 3, configs: { 'min.insync.replicas': '2' } });
      expect(created(5)).toMatchObject({ replicationFactor: 3, configs: { 'min.insync.replicas': '2' } });
    });

    it('reports a factor the cluster cannot hold as an error with the file and line', () => {
      const plan = planTopology(topology([auto({ replicationFactor: 3 })]), live({}, {}, undefined, 2));
      expect(plan.actions).toEqual([]);
      expect(plan.errors).toEqual([{ type: 'replication-unavailable', topic: 'a', message: 't.yaml:4: a: replication factor 3 needs at least 3 brokers; the cluster has 2' }]);
    });

    it('reports min.insync.replicas above an auto factor as an error', () => {
      const plan = planTopology(topology([auto({ minInsyncReplicas: 2 })]), live({}, {}, undefined, 1));
      expect(plan.errors).toMatchObject([{ type: 'replication-unavailable', message: expect.stringContaining('min.insync.replicas 2 exceeds the replication factor 1') }]);
    });

    it('keeps configs.min.insync.replicas over the computed one', () => {
      const plan = planTopology(topology([auto({ minInsyncReplicas: undefined, configs: { 'min.insync.replicas': '3' } })]), live({}, {}, undefined, 3));
      expect(plan.actions).toMatchObject([{ replicationFactor: 3, configs: { 'min.insync.replicas': '3' } }]);
    });

    it('accepts an RF 3 topic under auto while one broker of three is down', () => {
      const plan = planTopology(topology([auto()]), live({ a: liveTopic({ replicationFactor: 3, configs: { 'retention.ms': '1000', 'min.insync.replicas': '2' } }) }, {}, undefined, 2));
      expect(plan).toEqual({ actions: [], errors: [] });
    });

    it('refuses an RF 1 topic under auto on three brokers, naming what auto means there', () => {
      const plan = planTopology(topology([auto()]), live({ a: liveTopic() }, {}, undefined, 3));
      expect(plan.errors).toEqual([
        {
          type: 'replication-factor-changed',
          topic: 'a',
          message: 't.yaml:4: a: the file asks for replication factor auto (3 on 3 brokers) but the topic has 1; changing it needs a partition reassignment, which Sluice does not do',
        },
      ]);
    });

    it('alters min.insync.replicas of an existing topic to follow its factor', () => {
      const plan = planTopology(topology([auto()]), live({ a: liveTopic({ replicationFactor: 3 }) }, {}, undefined, 3));
      expect(plan.actions).toEqual([{ type: 'alter-topic-configs', topic: 'a', changes: [{ name: 'min.insync.replicas', from: '1', to: '2' }] }]);
    });
  });
});

describe('declared data contracts', () => {
  const rule = (name: string, expr: string) => ({ name, kind: 'CONDITION' as const, mode: 'WRITE' as const, type: 'CEL' as const, expr });
  const declared = (ruleSet: object, metadata?: object) =>
    withSchema('a', { valueSchema: { file: '/x/a.avsc', subject: 'a-value', schema, text: JSON.stringify(schema), contract: { ruleSet, ...(metadata ? { metadata } : {}) } } });

  it('registers the schema with its rules, naming what changes against the latest version', () => {
    const topic = declared({ domainRules: [rule('positive', 'message.amount > 0'), rule('currency', "message.currency == 'EUR'")] });
    const latestContract = { ruleSet: { domainRules: [rule('positive', 'message.amount >= 0'), rule('old', 'true')] } };
    const plan = planTopology(topology([topic]), live({ a: liveTopic() }, { 'a-value': { exists: true, registered: false, incompatibilities: [], latestContract } }, ['a']));
    expect(plan.actions).toEqual([
      expect.objectContaining({
        type: 'register-schema',
        subject: 'a-value',
        contract: topic.valueSchema!.contract,
        contractChanges: ['~ domain rule positive', '+ domain rule currency (CEL CONDITION WRITE)', '- domain rule old'],
      }),
    ]);
    expect(formatPlan(plan, 't', '/x/t.topology.yaml')).toMatch(
      /register \S*\/x\/a\.avsc as a new version of a-value with 2 rules\n {6}~ domain rule positive\n {6}\+ domain rule currency \(CEL CONDITION WRITE\)\n {6}- domain rule old\n/,
    );
    expect(JSON.parse(planJson(plan)).actions[0]).toMatchObject({ contractChanges: ['~ domain rule positive', '+ domain rule currency (CEL CONDITION WRITE)', '- domain rule old'] });
  });

  it('sees no change in defaults or key order, only in metadata that differs', () => {
    const topic = declared({ domainRules: [{ expr: 'true', type: 'CEL', name: 'r', kind: 'CONDITION' }] }, { properties: { owner: 'x' } });
    const latestContract = { ruleSet: { domainRules: [{ name: 'r', kind: 'CONDITION', mode: 'WRITEREAD', type: 'CEL', expr: 'true' }] }, metadata: { properties: { owner: 'y' } } } as DeclaredContract;
    const plan = planTopology(topology([topic]), live({ a: liveTopic() }, { 'a-value': { exists: true, registered: false, incompatibilities: [], latestContract } }, ['a']));
    expect(plan.actions[0]).toMatchObject({ contractChanges: ['~ metadata'] });
  });

  it('has nothing to do when the schema with these rules is registered', () => {
    const plan = planTopology(topology([declared({ domainRules: [rule('positive', 'message.amount > 0')] })]), live({ a: liveTopic() }, { 'a-value': registered }, ['a']));
    expect(plan).toEqual({ actions: [], errors: [] });
  });
});

describe('workers pinned by input.useLatestWithMetadata', () => {
  const pinned = (topics: TopicSpec[]): Topology => ({
    ...topology(topics),
    workers: [
      {
        name: 'w',
        input: 'a',
        output: 'a',
        deadLetter: 'a',
        groupId: 'g',
        handler: '/x/h.ts',
        delivery: 'at-least-once',
        useLatestWithMetadata: { major_version: '2' },
        location: 't.topology.yaml:12',
      },
    ],
  });
  const unmatched = (subjects: Record<string, LiveSubject>): LiveSnapshot => ({ ...live({ a: liveTopic() }, subjects, ['a']), unmatchedPins: ['w'] });

  it('is an error when no version has the properties, naming the worker, its line and the properties', () => {
    const plan = planTopology(pinned([withSchema('a')]), unmatched({ 'a-value': registered }));
    expect(plan.errors).toEqual([
      {
        type: 'pinned-version-missing',
        topic: 'a',
        message:
          "t.topology.yaml:12: worker w reads with input.useLatestWithMetadata major_version=2, but no version of a-value has these metadata properties (nor does the file's schema); the worker would not start",
      },
    ]);
    expect(formatPlan(plan, 't', '/x/t.topology.yaml')).toMatch(/! t\.topology\.yaml:12: worker w reads with input\.useLatestWithMetadata major_version=2/);
  });

  it('is no error when a version has them, or the version this plan registers declares them', () => {
    expect(planTopology(pinned([withSchema('a')]), live({ a: liveTopic() }, { 'a-value': registered }, ['a'])).errors).toEqual([]);
    const declaring = withSchema('a', { valueSchema: { file: '/x/a.avsc', subject: 'a-value', schema, text: JSON.stringify(schema), contract: { metadata: { properties: { major_version: '2' } } } } });
    const plan = planTopology(pinned([declaring]), unmatched({ 'a-value': { exists: true, registered: false, incompatibilities: [] } }));
    expect(plan.errors).toEqual([]);
    expect(plan.actions).toEqual([expect.objectContaining({ type: 'register-schema', subject: 'a-value' })]);
  });
});
