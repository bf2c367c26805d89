import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../core/config.ts';
import { runCli } from '../support/cli.ts';
import { hasKcat, kcatReadAll } from '../support/kcat.ts';
import { brokers, createTestTopics, seam, uniqueName, withKafkaAdmin } from '../support/platform.ts';

/**
 * The operator commands as an operator runs them (separate processes, real
 * broker): `sluice dlq inspect|replay` and `sluice status`.
 */
describe.skipIf(!hasKcat)('sluice dlq and sluice status', () => {
  const original = uniqueName('cli.orders');
  const output = `${original}.out`;
  const dlq = `${original}.dlq`;
  const groupId = uniqueName('cli.group');
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    await createTestTopics([original, output, dlq].map((name) => ({ name, partitions: name === original ? 2 : 1 })));
    const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-'));
    const topology = join(dir, 'topology.yaml');
    writeFileSync(
      topology,
      [
        'topics:',
        `  - { name: ${original}, partitions: 2, valueSchema: ${PROJECT_ROOT}/schemas/OrderPlaced.avsc }`,
        `  - { name: ${output}, valueSchema: ${PROJECT_ROOT}/schemas/OrderScored.avsc }`,
        `  - { name: ${dlq} }`,
        'workers:',
        `  - { name: cli-worker, input: ${original}, output: ${output}, deadLetter: ${dlq}, groupId: ${groupId}, handler: ${PROJECT_ROOT}/consumers/workers/score-orders.ts }`,
        '',
      ].join('\n'),
    );
    env = { KAFKA_BROKERS: brokers().join(','), SLUICE_TOPOLOGY: topology, SLUICE_LOG_LEVEL: 'warn' };

    const producer = seam('cli-ops-test').producer();
    const letter = (key: string, errorClass: string) => ({
      topic: dlq,
      key: Buffer.from(key),
      value: Buffer.from(`bytes of ${key}`),
      headers: Object.entries({
        'sluice.error.class': errorClass,
        'sluice.error.message': `${errorClass} while handling ${key}`,
        'sluice.original.topic': original,
        'sluice.original.partition': '0',
        'sluice.original.offset': '7',
        'sluice.failed.at': new Date().toISOString(),
      }).map(([name, value]) => [name, Buffer.from(value)] as const),
    });
    await producer.send([letter('order-a', 'TypeError'), letter('order-b', 'DecodeError')]);
    await producer.send([
      { topic: original, key: Buffer.from('x'), value: Buffer.from('x'), partition: 0 },
      { topic: original, key: Buffer.from('y'), value: Buffer.from('y'), partition: 0 },
      { topic: original, key: Buffer.from('z'), value: Buffer.from('z'), partition: 1 },
    ]);
    await producer.close();
    // The group has read partition 0 up to offset 1 and nothing of partition 1.
    await withKafkaAdmin((admin) => admin.setGroupOffsets(groupId, [{ topic: original, partition: 0, offset: 1n }]));
  });

  afterAll(async () => {
    await withKafkaAdmin((admin) => admin.deleteTopics([original, output, dlq, `${dlq}.replayed`])).catch(() => undefined);
  });

  // Counted by reading (read_committed, via librdkafka): a transaction's commit marker takes an offset too.
  function replayedCopies(): number {
    return kcatReadAll(brokers(), original).filter((r) => r.key?.toString() === 'order-a').length;
  }

  it('inspect lists each dead letter with its error class and origin', async () => {
    const result = await runCli(['dlq', 'inspect', dlq], env);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/order-a[\s\S]*TypeError/);
    expect(result.stdout).toMatch(/order-b[\s\S]*DecodeError/);
    expect(result.stdout).toContain(original);
    expect(result.stdout).toMatch(/2 of 2 dead letter\(s\)/);

    const filtered = await runCli(['dlq', 'inspect', dlq, '--json', '--where', 'headers["sluice.error.class"] == "DecodeError"'], env);
    expect(filtered.code, filtered.stderr).toBe(0);
    expect(filtered.stdout.trim().split('\n')).toHaveLength(1);
    expect(filtered.stdout).toContain('order-b');
  });

  it('replay re-produces only the matching letter, and a second replay writes nothing', async () => {
    const dry = await runCli(['dlq', 'replay', dlq, '--where', 'key == "order-a"', '--dry-run'], env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/would replay 1 dead letter/);
    expect(replayedCopies()).toBe(0);

    const first = await runCli(['dlq', 'replay', dlq, '--where', 'key == "order-a"'], env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(new RegExp(`replayed 1 dead letter\\(s\\); 0 already replayed`));
    const second = await runCli(['dlq', 'replay', dlq, '--where', 'key == "order-a"'], env);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/replayed 0 dead letter\(s\); 1 already replayed/);
    expect(replayedCopies()).toBe(1);

    // A later replay that produces again (the transactional id is initialised a second time).
    const rest = await runCli(['dlq', 'replay', dlq], env);
    expect(rest.code, rest.stderr).toBe(0);
    expect(rest.stdout).toMatch(/replayed 1 dead letter\(s\); 1 already replayed/);
    expect(replayedCopies()).toBe(1);
    expect(kcatReadAll(brokers(), original).filter((r) => r.key?.toString() === 'order-b')).toHaveLength(1);
  });

  it('replay writes only where the topology says the letters came from: a forged sluice.original.topic stops it, as does --to outside the topology', async () => {
    const producer = seam('cli-ops-forged').producer();
    try {
      await producer.send([
        {
          topic: dlq,
          key: Buffer.from('forged'),
          value: Buffer.from('forged bytes'),
          // A topic of the topology, but not the one whose records dead-letter here.
          headers: [
            ['sluice.error.class', Buffer.from('TypeError')],
            ['sluice.original.topic', Buffer.from(output)],
          ],
        },
      ]);
    } finally {
      await producer.close();
    }
    const refused = await runCli(['dlq', 'replay', dlq, '--where', 'key == "forged"'], env);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`names "${output}" as its topic, which is not one whose records dead-letter into ${dlq}`);
    expect(kcatReadAll(brokers(), output).filter((r) => r.key?.toString() === 'forged')).toHaveLength(0);
    const elsewhere = await runCli(['dlq', 'replay', dlq, '--where', 'key == "forged"', '--to', '__consumer_offsets'], env);
    expect(elsewhere.code).not.toBe(0);
    expect(elsewhere.stderr).toMatch(/--to __consumer_offsets: not a topic of the topology/);
    // The operator may send it back to the worker's input explicitly.
    const back = await runCli(['dlq', 'replay', dlq, '--where', 'key == "forged"', '--to', original], env);
    expect(back.code, back.stderr).toBe(0);
    expect(back.stdout).toMatch(/replayed 1 dead letter/);
  });

  it('status prints the worker group with committed offsets and lag per partition', async () => {
    const result = await runCli(['status', '--json'], env);
    expect(result.code, result.stderr).toBe(0);
    const status = JSON.parse(result.stdout.trim().split('\n')[0]!) as {
      worker: string;
      groupId: string;
      totalLag: string;
      partitions: { partition: number; committed?: string; end: string; lag: string }[];
    };
    expect(status.worker).toBe('cli-worker');
    expect(status.groupId).toBe(groupId);
    const [p0, p1] = [0, 1].map((n) => status.partitions.find((p) => p.partition === n)!);
    expect(p0).toMatchObject({ committed: '1', lag: String(Number(p0!.end) - 1) });
    expect(p1?.committed).toBeUndefined();
    expect(p1?.lag).toBe(p1?.end);
    expect(status.totalLag).toBe(String(Number(p0!.lag) + Number(p1!.lag)));
    const text = await runCli(['status'], env);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('cli-worker');
  });
});
