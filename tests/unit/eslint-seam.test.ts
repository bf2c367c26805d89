import { join } from 'node:path';
import { ESLint } from 'eslint';
import { beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../core/config.ts';

/**
 * `npm run lint` keeps the Kafka seam: the project's eslint.config.js, run through
 * ESLint's API on source text given a path, must report an import of
 * @platformatic/kafka outside kafka/ and of kafkajs outside bench/ (issue 23: a
 * later block once silently replaced the first restriction).
 */

const eslint = new ESLint({ cwd: PROJECT_ROOT });

async function restrictedImports(path: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(source, { filePath: join(PROJECT_ROOT, path) });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

// The first lint loads the parser and the config: not part of any one case's time.
beforeAll(() => restrictedImports('kafka/x.ts', ''), 60_000);

const PLATFORMATIC = `import { Producer } from '@platformatic/kafka';\nexport const client = Producer;\n`;
const PLATFORMATIC_SUBPATH = `import { Producer } from '@platformatic/kafka/clients';\nexport const client = Producer;\n`;
const KAFKAJS = `import { Kafka } from 'kafkajs';\nexport const client = Kafka;\n`;

describe('eslint guards the Kafka seam', () => {
  it.each(['producers/x.ts', 'consumers/x.ts', 'core/x.ts', 'tests/unit/x.test.ts', 'tests/support/x.ts', 'bench/x.ts', 'cli/x.js'])('reports @platformatic/kafka imported by %s', async (path) => {
    expect(await restrictedImports(path, PLATFORMATIC)).toEqual([expect.stringContaining('Only kafka/ talks to the Kafka client')]);
    expect(await restrictedImports(path, PLATFORMATIC_SUBPATH)).toEqual([expect.stringContaining('Only kafka/ talks to the Kafka client')]);
  });

  it.each(['producers/x.ts', 'kafka/x.ts', 'tests/unit/kafka-x.test.ts', 'tests/integration/x.test.ts'])('reports kafkajs imported by %s', async (path) => {
    expect(await restrictedImports(path, KAFKAJS)).toEqual([expect.stringContaining('kafkajs is only a benchmark competitor')]);
  });

  it('lets the seam, its own tests and the bare benchmark contender import the client, and bench/ import kafkajs', async () => {
    for (const path of ['kafka/x.ts', 'tests/unit/kafka-x.test.ts', 'tests/integration/kafka-x.test.ts', 'bench/bare-platformatic-producer.ts']) {
      expect(await restrictedImports(path, PLATFORMATIC), path).toEqual([]);
    }
    expect(await restrictedImports('bench/x.ts', KAFKAJS)).toEqual([]);
  });
});
