import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../core/config.ts';

/**
 * The Kafka seam (issue 11): only kafka/ imports the client library, and kafkajs
 * is left to the benchmark's competitors. eslint's no-restricted-imports says the
 * same while editing; this walks every .ts file so it holds even unlinted.
 */

const SKIP = new Set(['node_modules', '.git', 'data', 'coverage', '.cache']);

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(entry.name) || entry.name.startsWith('data-')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...tsFiles(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(relative(PROJECT_ROOT, path));
  }
  return out;
}

const importsOf = (file: string, pkg: string): boolean => new RegExp(`(?:from|import)\\s*\\(?\\s*['"]${pkg.replace('/', '\\/')}(?:/[^'"]*)?['"]`).test(readFileSync(join(PROJECT_ROOT, file), 'utf8'));

const files = tsFiles(PROJECT_ROOT);

describe('the Kafka seam', () => {
  it('finds the repository files', () => {
    expect(files).toContain('kafka/index.ts');
    expect(files.length).toBeGreaterThan(100);
  });

  it('lets only kafka/ (and the seam tests, and the bare benchmark contender) import @platformatic/kafka', () => {
    const allowed = (f: string) => f.startsWith('kafka/') || /^tests\/(unit|integration)\/kafka-[^/]+\.test\.ts$/.test(f) || f === 'bench/bare-platformatic-producer.ts';
    expect(files.filter((f) => importsOf(f, '@platformatic/kafka') && !allowed(f))).toEqual([]);
  });

  it('lets only bench/ import kafkajs (and the local-broker launcher, until the broker branch moves it)', () => {
    const allowed = (f: string) => f.startsWith('bench/') || f === 'broker/broker.ts';
    expect(files.filter((f) => importsOf(f, 'kafkajs') && !allowed(f))).toEqual([]);
  });

  it('keeps kafkajs a runtime dependency only while something outside bench/ imports it', () => {
    const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies?: Record<string, string> };
    expect(pkg.dependencies).toHaveProperty('@platformatic/kafka');
    const runtimeUsers = files.filter((f) => !f.startsWith('bench/') && !f.startsWith('tests/') && importsOf(f, 'kafkajs'));
    if (runtimeUsers.length === 0) expect(pkg.dependencies).not.toHaveProperty('kafkajs');
  });
});
