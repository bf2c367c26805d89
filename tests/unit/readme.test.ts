import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../core/config.ts';
import { configTable } from '../../scripts/config-table.ts';

const readme = readFileSync(`${PROJECT_ROOT}/README.md`, 'utf8');

describe('README', () => {
  it('documents every configuration option exactly as core/config.ts defines it', () => {
    const section = readme.split('<!-- config:start -->\n')[1]?.split('<!-- config:end -->')[0];
    expect(section?.trim()).toBe(configTable().trim());
  });

  it('gives the two commands, and CI runs the test one', () => {
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toContain('npm test');
    expect(readFileSync(`${PROJECT_ROOT}/.ci/run`, 'utf8')).toMatch(/^npm test$/m);
  });
});
