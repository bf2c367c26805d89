import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../core/config.ts';

/**
 * `npm run lint` runs dependency-cruiser with the project's .dependency-cruiser.js.
 * Here it runs the same way on a small made-up tree that breaks each rule once
 * (and keeps to them elsewhere), and must name exactly those imports.
 */

const run = promisify(execFile);

/** path → source: a bin/ entry reaching a product tree that breaks each rule once. */
const FIXTURE: Record<string, string> = {
  'package.json': JSON.stringify({ name: 'fixture', type: 'module', dependencies: { '@platformatic/kafka': '*' }, devDependencies: { kafkajs: '*' } }),
  'tsconfig.json': JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', allowImportingTsExtensions: true, noEmit: true } }),
  'bin/sluice.js': `import '../cli/sluice.ts';\n`,
  'node_modules/@platformatic/kafka/package.json': JSON.stringify({ name: '@platformatic/kafka', type: 'module', main: 'index.js' }),
  'node_modules/@platformatic/kafka/index.js': `export const Producer = 1;\n`,
  'node_modules/kafkajs/package.json': JSON.stringify({ name: 'kafkajs', type: 'module', main: 'index.js' }),
  'node_modules/kafkajs/index.js': `export const Kafka = 1;\n`,
  'cli/sluice.ts': ['core/a', 'kafka/index', 'access/a', 'registry/a', 'topology/a', 'producers/a'].map((f) => `import '../${f}.ts';\n`).join(''),
  'core/a.ts': `import { client } from '../kafka/index.ts';\nexport const core = client;\n`,
  'kafka/index.ts': `import { Producer } from '@platformatic/kafka';\nimport { inner } from './inner.ts';\nexport const client = [Producer, inner];\n`,
  'kafka/inner.ts': `export const inner = 1;\n`,
  'access/a.ts': `import { registry } from '../registry/a.ts';\nexport const access = registry;\n`,
  'registry/a.ts': `import { topology } from '../topology/a.ts';\nexport const registry = topology;\n`,
  // A cycle, and topology/ importing below it as it may.
  'topology/a.ts': `import { b } from './b.ts';\nimport '../registry/b.ts';\nexport const topology = b;\n`,
  'topology/b.ts': `import { topology } from './a.ts';\nexport const b = () => topology;\n`,
  'registry/b.ts': `export const fine = 1;\n`,
  'producers/a.ts': [
    `import { Producer } from '@platformatic/kafka';`,
    `import { Kafka } from 'kafkajs';`,
    `import { inner } from '../kafka/inner.ts';`,
    `import { helper } from '../tests/support/helper.ts';`,
    `import { program } from '../cli/program.ts';`,
    `export const all = [Producer, Kafka, inner, helper, program];`,
    '',
  ].join('\n'),
  'cli/program.ts': `export const program = 1;\n`,
  'tests/support/helper.ts': `export const helper = 1;\n`,
  'tests/unit/dead.test.ts': `import { unused } from '../../lb/dead.ts';\nexport const test = unused;\n`,
  'lb/dead.ts': `export const unused = 1;\n`,
  'discovery/orphan.ts': `export const orphan = 1;\n`,
};

const EXPECTED = [
  'no-circular: topology/a.ts → topology/b.ts',
  'layer-core: core/a.ts → kafka/index.ts',
  'layer-access: access/a.ts → registry/a.ts',
  'layer-registry: registry/a.ts → topology/a.ts',
  'cli-on-top: producers/a.ts → cli/program.ts',
  'product-not-on-tooling: producers/a.ts → tests/support/helper.ts',
  'seam-entry: producers/a.ts → kafka/inner.ts',
  'seam-client: producers/a.ts → node_modules/@platformatic/kafka',
  'kafkajs-only-in-bench: producers/a.ts → node_modules/kafkajs',
  'product-not-on-dev-dependencies: producers/a.ts → node_modules/kafkajs',
  'product-reachable: lb/dead.ts',
  'product-reachable: discovery/orphan.ts',
  'no-orphans: discovery/orphan.ts',
];

interface Violation {
  rule: { name: string };
  from: string;
  to: string;
}

let dir: string;
let violations: string[];
let exitCode: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-depcruise-'));
  for (const [path, text] of Object.entries(FIXTURE)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  const cruise = (...args: string[]) =>
    run(process.execPath, [join(PROJECT_ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruiser.mjs'), '--config', join(PROJECT_ROOT, '.dependency-cruiser.js'), ...args, '.'], {
      cwd: dir,
    }).then(
      (ok) => ({ stdout: ok.stdout, code: 0 }),
      (error: { stdout: string; code: number }) => ({ stdout: error.stdout, code: error.code }),
    );
  // The JSON report lists the violations; the plain run is what `npm run lint` runs, whose exit code fails it.
  const [json, plain] = await Promise.all([cruise('--output-type', 'json'), cruise()]);
  const result = { stdout: json.stdout, code: plain.code };
  exitCode = result.code;
  const report = JSON.parse(result.stdout) as { summary: { violations: Violation[] } };
  const shown = (path: string) => path.replace(/^(node_modules\/(@[^/]+\/)?[^/]+)\/.*$/, '$1');
  violations = report.summary.violations.map((v) => `${v.rule.name}: ${v.from}${v.from === v.to ? '' : ` → ${shown(v.to)}`}`);
}, 60_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the dependency rules of npm run lint', () => {
  it('name each import that breaks a rule, and nothing else', () => {
    expect(violations.sort()).toEqual([...EXPECTED].sort());
  });

  it('fail the command', () => {
    expect(exitCode).toBeGreaterThan(0);
  });
});
