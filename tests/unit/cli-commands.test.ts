import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../core/config.ts';
import { buildProgram, invokedCommand } from '../../cli/program.ts';

describe('sluice CLI', async () => {
  const program = await buildProgram();
  const names = program.commands.map((c) => c.name());

  it('offers every command the README documents', () => {
    for (const name of ['up', 'registry', 'ingress', 'worker', 'kafka', 'topology', 'schemas', 'tail', 'console', 'status', 'dlq', 'bridge', 'services', 'lb']) {
      expect(names, name).toContain(name);
    }
  });

  it('registers every command group in cli/commands', () => {
    const groups = readdirSync(`${PROJECT_ROOT}/cli/commands`).filter((f) => f.endsWith('.ts') && f !== 'context.ts');
    for (const file of groups) {
      const group = file.replace(/\.ts$/, '');
      const registered = names.some((n) => n === group || n.startsWith(group));
      expect(registered, `cli/commands/${file} is not in COMMAND_GROUPS`).toBe(true);
    }
  });

  it('has help on every command', () => {
    for (const command of program.commands) expect(command.description().length, command.name()).toBeGreaterThan(10);
  });
});

describe('loading only the invoked command group', () => {
  it('finds the command after root options and their values', () => {
    expect(invokedCommand(['tail', 'orders.placed', '--max', '3'])).toBe('tail');
    expect(invokedCommand(['--brokers', '127.0.0.1:9092', '--log-level', 'debug', 'dlq', 'inspect', 'x.dlq'])).toBe('dlq');
    expect(invokedCommand(['--insecure', '--registry-url', 'http://r', 'console'])).toBe('console');
    expect(invokedCommand(['--help'])).toBeUndefined();
  });

  it('registers the core commands and that group only, and every group for a name no group has', async () => {
    const tail = (await buildProgram('tail')).commands.map((c) => c.name());
    expect(tail).toEqual(expect.arrayContaining(['up', 'registry', 'ingress', 'worker', 'kafka', 'tail']));
    expect(tail).not.toContain('dlq');
    expect((await buildProgram('etcd')).commands.map((c) => c.name())).toEqual(expect.arrayContaining(['services', 'etcd']));
    expect((await buildProgram('kafka')).commands.map((c) => c.name())).toEqual(['up', 'registry', 'ingress', 'worker', 'kafka']);
    expect((await buildProgram('no-such-command')).commands.map((c) => c.name())).toEqual(expect.arrayContaining(['tail', 'dlq', 'lb', 'access']));
  });
});
