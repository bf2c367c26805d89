import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../core/config.ts';
import { buildProgram } from '../../cli/program.ts';

describe('sluice CLI', () => {
  const program = buildProgram();
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
