import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../core/config.ts';

/**
 * The Kafka seam (issue 11): @platformatic/kafka is the runtime client and kafkajs
 * only a benchmark competitor. Who may import which is checked by `npm run lint`
 * (eslint.config.js and .dependency-cruiser.js, which also sees dynamic imports),
 * as tests/unit/eslint-seam.test.ts and dependency-rules.test.ts prove.
 */

describe('the Kafka seam', () => {
  it('keeps kafkajs a devDependency (the benchmark competitors) and @platformatic/kafka the runtime client', () => {
    const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies?: Record<string, string> };
    expect(pkg.dependencies).toHaveProperty('@platformatic/kafka');
    expect(pkg.dependencies).not.toHaveProperty('kafkajs');
    expect(pkg.devDependencies).toHaveProperty('kafkajs');
  });
});
