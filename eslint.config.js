// @ts-check
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const PLATFORMATIC = { name: '@platformatic/kafka', message: 'Only kafka/ talks to the Kafka client: use the seam (kafka/index.ts).' };
const KAFKAJS = { name: 'kafkajs', message: 'kafkajs is only a benchmark competitor (bench/): use the seam (kafka/index.ts).' };
/** Seam files, the seam's own tests (they build client errors and check against the raw client), and the bare benchmark contender. */
const SEAM_CLIENT_ALLOWED = ['kafka/**', 'tests/unit/kafka-*.test.ts', 'tests/integration/kafka-*.test.ts', 'bench/bare-platformatic-producer.ts'];
/** The local-broker launcher still probes with kafkajs; it moves to the seam in the broker branch. */
const KAFKAJS_ALLOWED = ['broker/broker.ts'];

export default tseslint.config(
  { ignores: ['node_modules/**', 'data/**', 'data-*/**', 'coverage/**', 'tests/artifacts/**', 'schemas/generated/**', '.cache/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      // `_`-prefixed names are deliberately unused (callback signatures, destructuring to omit).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  // The Kafka seam (issue 11): only kafka/ imports the client; kafkajs is left to the
  // benchmark's competitors (what a user would write). tests/unit/kafka-seam.test.ts checks the same.
  {
    files: ['**/*.ts'],
    ignores: SEAM_CLIENT_ALLOWED,
    rules: { 'no-restricted-imports': ['error', { paths: [PLATFORMATIC], patterns: [{ group: ['@platformatic/kafka/*'], message: PLATFORMATIC.message }] }] },
  },
  {
    files: ['**/*.ts'],
    ignores: ['bench/**', ...KAFKAJS_ALLOWED],
    rules: { 'no-restricted-imports': ['error', { paths: [KAFKAJS] }] },
  },
  {
    files: ['console/public/**/*.js'],
    languageOptions: { globals: { ...globals.browser } },
  },
);
