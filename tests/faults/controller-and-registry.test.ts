import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalCluster } from '../../broker/cluster.ts';
import { runCli } from '../support/cli.ts';
import { faultsCluster, replicationOf, startDownNodes, waitForFullIsr, waitForLeadersOff } from './cluster.ts';
import { startPlatform, type Platform } from './platform.ts';
import { getJson, recordSchema, registerSchema, registrySnapshot } from './registry.ts';
import { report } from './report.ts';

describe('[faults] controller loss and one broker down: topology apply and the registry keep working', () => {
  let cluster: LocalCluster;
  let platform: Platform;

  beforeAll(async () => {
    cluster = await faultsCluster();
    await startDownNodes(cluster);
    platform = await startPlatform();
  });

  afterAll(async () => {
    await platform?.stop();
    await startDownNodes(cluster);
  });

  it('the active controller SIGKILLed: topology apply and registry writes work after the new election', async () => {
    const killed = await cluster.controllerId();
    const node = cluster.nodes.find((n) => n.id === killed)!;
    await node.kill('SIGKILL');
    const started = Date.now();
    const controller = await cluster.controllerId();
    expect(controller).not.toBe(killed);

    // A new topic in the file: apply creates it with auto replication on the brokers that remain.
    const extra = `${platform.topics.placed}.extra`;
    writeFileSync(platform.topologyFile, `${readFileSync(platform.topologyFile, 'utf8').replace(/^topics:\n/m, `topics:\n  - name: ${extra}\n    partitions: 2\n`)}`);
    const apply = await runCli(['topology', 'apply', '--auto-approve'], platform.env, 120_000);
    expect(apply.code, apply.stdout + apply.stderr).toBe(0);
    expect(apply.stdout).toContain(`create topic ${extra}`);
    // auto counts the brokers the cluster reports: 3 until the dead one is fenced (its replicas then catch up when it returns), 2 after.
    const { replicas } = await replicationOf(cluster, extra);
    expect(replicas).toHaveLength(2);
    expect(replicas.every((n) => n >= 2)).toBe(true);

    const id = await registerSchema(platform.registryUrl, `${platform.topics.placed}.controller-value`, recordSchema('AfterElection', ['a']));
    expect(id).toBeGreaterThan(0);
    report('controller-kill', { killed, newController: controller, applyAndRegisterMs: Date.now() - started });

    await node.start();
    await waitForFullIsr(cluster, [platform.topics.placed, platform.topics.scored]);
  });

  it('serves reads and takes writes with any one broker down; ids and versions unchanged after all restart', async () => {
    const subjects: string[] = [];
    const ids = new Map<string, number>();
    for (const node of cluster.nodes) {
      await node.kill('SIGKILL');
      // "While a broker is down": once the cluster has noticed (the victim fenced, out of the ISR of _schemas;
      // about the broker session timeout). Before that an acks=all write waits for the dead follower.
      await waitForLeadersOff(cluster, String(platform.env.SLUICE_REGISTRY_TOPIC), node.id, 90_000, true);
      // Reads: every subject written so far, by id and by version.
      for (const subject of subjects) {
        const { status, body } = await getJson<{ id: number }>(platform.registryUrl, `/subjects/${encodeURIComponent(subject)}/versions/latest`);
        expect(status).toBe(200);
        expect(body.id).toBe(ids.get(subject));
        expect((await getJson(platform.registryUrl, `/schemas/ids/${ids.get(subject)}`)).status).toBe(200);
      }
      // Writes: a new subject and a second version of the first.
      const subject = `${platform.topics.placed}.down-${node.id}-value`;
      ids.set(subject, await registerSchema(platform.registryUrl, subject, recordSchema(`Down${node.id}`, ['a'])));
      subjects.push(subject);
      // The first subject's latest version (and id) moves on with each of these.
      ids.set(subjects[0]!, await registerSchema(platform.registryUrl, subjects[0]!, recordSchema(`Down${cluster.nodes[0]!.id}`, ['a', `b${node.id}`])));
      await node.start();
      // _schemas too: with min.insync.replicas 2, killing the next broker before this one caught up leaves one in sync.
      await waitForFullIsr(cluster, [platform.topics.placed, String(platform.env.SLUICE_REGISTRY_TOPIC)]);
    }
    const before = await registrySnapshot(platform.registryUrl, subjects);
    expect(before[subjects[0]!]).toHaveLength(4);

    // Every broker restarted (and so every replica of _schemas rewritten from the others): the registry, restarted, reads the same.
    await platform.restart();
    expect(await registrySnapshot(platform.registryUrl, subjects)).toEqual(before);
  });
});
