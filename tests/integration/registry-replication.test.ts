import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createKafka } from '../../kafka/index.ts';
import { startRegistry, type RunningRegistry } from '../../registry/server.ts';
import { call, deleteRegistryTopic, recordSchema, registryTestConfig } from './registry-helpers.ts';

const { config, logger, topic } = registryTestConfig();
const running: RunningRegistry[] = [];

async function start(): Promise<RunningRegistry> {
  const registry = await startRegistry({ config, logger, port: 0, topic });
  running.push(registry);
  return registry;
}

const schemaN = (n: number) => recordSchema(`Event${n}`, [{ name: `f${n}`, type: 'int' }]);

afterAll(async () => {
  await Promise.all(running.map((r) => r.close()));
  await deleteRegistryTopic(config, logger, topic);
});

describe('registry state in Kafka', () => {
  let first: RunningRegistry;

  beforeAll(async () => {
    first = await start();
  });

  it('creates a compacted single-partition topic', async () => {
    const admin = createKafka(config, logger, 'registry-test').admin();
    try {
      expect(await admin.partitionCount(topic)).toBe(1);
      const entries = (await admin.describeTopicConfigs([topic])).get(topic) ?? [];
      expect(entries.find((e) => e.name === 'cleanup.policy')?.value).toBe('compact');
      expect(entries.find((e) => e.name === 'min.insync.replicas')?.value).toBe('1');
    } finally {
      await admin.close();
    }
  });

  it('keeps subjects, versions and ids across a restart', async () => {
    expect((await call(first.url, 'POST', '/subjects/a/versions', { schema: schemaN(1) })).body).toEqual({ id: 1 });
    expect((await call(first.url, 'POST', '/subjects/b/versions', { schema: schemaN(2) })).body).toEqual({ id: 2 });
    await call(first.url, 'PUT', '/config/b', { compatibility: 'NONE' });
    await call(first.url, 'DELETE', '/subjects/a');
    await first.close();

    const again = await start();
    expect((await call(again.url, 'GET', '/subjects')).body).toEqual(['b']);
    expect((await call(again.url, 'GET', '/subjects?deleted=true')).body).toEqual(['a', 'b']);
    expect((await call(again.url, 'GET', '/config/b')).body).toEqual({ compatibilityLevel: 'NONE' });
    expect((await call(again.url, 'POST', '/subjects/b/versions', { schema: schemaN(2) })).body).toEqual({ id: 2 });
    expect((await call(again.url, 'POST', '/subjects/b/versions', { schema: schemaN(3) })).body).toEqual({ id: 3 });
    first = again;
  });

  it('serves on a second instance what the first just wrote', async () => {
    const second = await start();
    const { body } = await call(first.url, 'POST', '/subjects/c/versions', { schema: schemaN(4) });
    expect(body).toEqual({ id: 4 });
    // No waiting: a miss makes the second instance catch up with the topic before answering.
    expect((await call(second.url, 'GET', '/schemas/ids/4')).body).toEqual({ schema: schemaN(4) });
    expect((await call(second.url, 'GET', '/subjects/c/versions/latest')).body).toMatchObject({ id: 4, version: 1 });
    expect((await call(second.url, 'POST', '/subjects/c/versions', { schema: schemaN(4) })).body).toEqual({ id: 4 });
  });

  it('gives racing registrations on two instances distinct ids and contiguous versions', async () => {
    const second = await start();
    await call(first.url, 'PUT', '/config/race', { compatibility: 'NONE' });
    const instances = [first, second];
    const schemas = Array.from({ length: 12 }, (_, i) => schemaN(100 + i));
    const answers = await Promise.all(schemas.map((schema, i) => call(instances[i % 2]!.url, 'POST', i % 3 === 0 ? `/subjects/race-${i}/versions` : '/subjects/race/versions', { schema })));
    expect(answers.map((a) => a.status)).toEqual(schemas.map(() => 200));
    const ids = answers.map((a) => (a.body as { id: number }).id);
    expect(new Set(ids).size).toBe(schemas.length);
    expect(Math.min(...ids)).toBe(5);
    expect(Math.max(...ids)).toBe(4 + schemas.length);

    // A listing is served from the instance's state, which applies the other instance's last records a moment
    // later (only a miss catches up first); both converge on the same contiguous versions.
    await vi.waitFor(
      async () => {
        const views = await Promise.all(instances.map((r) => call(r.url, 'GET', '/subjects/race/versions')));
        expect(views.map((v) => v.body)).toEqual([
          [1, 2, 3, 4, 5, 6, 7, 8],
          [1, 2, 3, 4, 5, 6, 7, 8],
        ]);
      },
      { timeout: 10_000, interval: 100 },
    );
    for (const [i, schema] of schemas.entries()) {
      for (const r of instances) {
        expect((await call(r.url, 'GET', `/schemas/ids/${ids[i]}`)).body).toEqual({ schema });
      }
    }
  });
});
