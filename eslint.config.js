// @ts-check
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const PLATFORMATIC = { name: '@platformatic/kafka', message: 'Only kafka/ talks to the Kafka client: use the seam (kafka/index.ts).' };
const KAFKAJS = { name: 'kafkajs', message: 'kafkajs is only a benchmark competitor (bench/): use the seam (kafka/index.ts).' };
/** Seam files, the seam's own tests (they build client errors and check against the raw client), and the bare benchmark contender. */
const SEAM_CLIENT_ALLOWED = ['kafka/**', 'tests/unit/kafka-*.test.ts', 'tests/integration/kafka-*.test.ts', 'bench/bare-platformatic-producer.ts'];
const SOURCES = ['**/*.ts', '**/*.js'];

/** The no-restricted-imports rule forbidding `clients` (each package and its subpaths). */
function restrictImports(...clients) {
  const patterns = clients.map(({ name, message }) => ({ group: [`${name}/*`], message }));
  return { 'no-restricted-imports': ['error', { paths: clients, patterns }] };
}

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
  // The Kafka seam (issue 11): only kafka/ imports the client; kafkajs is left to the benchmark's competitors (what
  // a user would write). Both restrictions are one rule key, and in a flat config a later block's setting of a rule
  // replaces an earlier one's for the files both match, so each file gets exactly one block below naming every
  // client it may not import. tests/unit/eslint-seam.test.ts lints sample files to prove it.
  {
    files: SOURCES,
    ignores: [...SEAM_CLIENT_ALLOWED, 'bench/**'],
    rules: restrictImports(PLATFORMATIC, KAFKAJS),
  },
  { files: ['bench/**'], ignores: SEAM_CLIENT_ALLOWED, rules: restrictImports(PLATFORMATIC) },
  { files: SEAM_CLIENT_ALLOWED.filter((glob) => !glob.startsWith('bench/')), rules: restrictImports(KAFKAJS) },
  {
    files: ['console/public/**/*.js'],
    languageOptions: { globals: { ...globals.browser } },
  },
);
