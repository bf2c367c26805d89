// @ts-check
/**
 * How Sluice's folders may import each other, checked by `npm run lint` (dependency-cruiser).
 *
 * Layers, lowest first; a folder imports only its own files and those of the layers below it:
 *   core/                  shared vocabulary: config, errors, logging, retry, serde, tracing, record types
 *   kafka/, broker/        the Kafka seam (only it talks to @platformatic/kafka; reached through kafka/index.ts),
 *                          and the local broker with the replication defaults
 *   access/                authentication and permissions of the HTTP services
 *   rules/                 data-contract rules (CEL, JSONata): validated by the registry, run by the services
 *   registry/              the schema registry (it checks access, stores schemas in Kafka)
 *   topology/              topology as code (it registers schemas in the registry)
 *   the services, tools    producers/, consumers/, integrations/, console/, reads/, contracts/, apidocs/, ...
 *   cli/ (and bin/)        the command line, which wires everything; nothing imports it
 * No import cycles anywhere. Tests, benchmarks and scripts sit beside the top; nothing that ships imports them,
 * and all that ships is reached from bin/ (or is a worker handler). tests/unit/dependency-rules.test.ts runs
 * this file on a made-up tree that breaks each rule once.
 */

const folders = (names) => `^(${names.join('|')})/`;
/** What ships. */
const PRODUCT_FOLDERS = [
  'access',
  'apidocs',
  'bin',
  'broker',
  'cli',
  'console',
  'consumers',
  'contracts',
  'core',
  'discovery',
  'integrations',
  'kafka',
  'lb',
  'producers',
  'reads',
  'registry',
  'rules',
  'schemas',
  'topology',
];
/** Tests, benchmarks and repository scripts: they do not ship. */
const TOOLING_FOLDERS = ['tests', 'bench', 'scripts'];
const OURS = folders([...PRODUCT_FOLDERS, ...TOOLING_FOLDERS]);
const PRODUCT = folders(PRODUCT_FOLDERS);
const TOOLING = folders(TOOLING_FOLDERS);
/** Files that may import the client: the seam, the seam's own tests, the bare benchmark contender (as eslint.config.js). */
const SEAM_CLIENT_ALLOWED = ['^kafka/', '^tests/(unit|integration)/kafka-[^/]+[.]test[.]ts$', '^bench/bare-platformatic-producer[.]ts$'];

/** `folder` may import only its own files and those of `below` (and packages). */
function layer(folder, below) {
  return {
    name: `layer-${folder}`,
    comment: `${folder}/ imports only ${[folder, ...below].map((f) => `${f}/`).join(', ')} (the layers below it)`,
    severity: 'error',
    from: { path: `^${folder}/` },
    to: { path: OURS, pathNot: [folder, ...below].map((f) => `^${f}/`) },
  };
}

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'An import cycle: modules that cannot be read, tested or loaded one without the other. Move what both need below both.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    layer('core', []),
    layer('kafka', ['core']),
    layer('broker', ['core']),
    layer('access', ['core']),
    layer('rules', ['core']),
    layer('registry', ['core', 'kafka', 'access', 'broker', 'rules']),
    layer('topology', ['core', 'kafka', 'access', 'registry', 'broker', 'rules']),
    {
      name: 'cli-on-top',
      comment: 'cli/ wires the services; nothing but the bin/ launcher (and tests) imports it.',
      severity: 'error',
      from: { pathNot: ['^cli/', '^bin/', '^tests/'] },
      to: { path: '^cli/' },
    },
    {
      name: 'product-not-on-tooling',
      comment: 'What ships never imports tests, benchmarks or repository scripts.',
      severity: 'error',
      from: { path: PRODUCT },
      to: { path: TOOLING },
    },
    {
      name: 'seam-entry',
      comment: 'Outside kafka/, the seam is reached through kafka/index.ts (its entry class and public types); unit tests may reach the internals they test.',
      severity: 'error',
      from: { pathNot: [...SEAM_CLIENT_ALLOWED, '^tests/unit/'] },
      to: { path: '^kafka/', pathNot: '^kafka/index[.]ts$' },
    },
    {
      name: 'seam-client',
      comment: 'Only kafka/ talks to @platformatic/kafka (static or dynamic import; eslint.config.js says the same for static ones).',
      severity: 'error',
      from: { pathNot: SEAM_CLIENT_ALLOWED },
      to: { path: '^node_modules/@platformatic/kafka/' },
    },
    {
      name: 'kafkajs-only-in-bench',
      comment: 'kafkajs is a benchmark competitor, not a client of Sluice.',
      severity: 'error',
      from: { pathNot: '^bench/' },
      to: { path: '^node_modules/kafkajs/' },
    },
    {
      name: 'product-not-on-dev-dependencies',
      comment: 'What ships imports only `dependencies`: a devDependency is not installed with --omit=dev.',
      severity: 'error',
      from: { path: PRODUCT },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'product-reachable',
      comment: 'What ships is used by the command line (bin/sluice.js) or a worker handler; a module only tests or benchmarks reach is dead.',
      severity: 'error',
      from: { path: ['^bin/', '^consumers/workers/'] },
      to: { path: PRODUCT, pathNot: ['^bin/', '^consumers/workers/', '^schemas/[^.]*generated/'], reachable: false },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import that resolves to no file.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'no-orphans',
      comment: 'A module nothing imports and that is no entry point: dead code, or a missing import.',
      severity: 'error',
      from: {
        orphan: true,
        pathNot: [
          '[.]test[.]ts$',
          '^consumers/workers/', // worker handlers, loaded by path from the topology file
          '^schemas/[^.]*generated/', // `sluice schemas codegen` output, kept current by tests/unit/contracts-codegen.test.ts
          '^bench/[^/]+[.]ts$', // benchmarks, run by path
          '^scripts/',
          '^cli/sluice[.]ts$',
          '^vitest[.][a-z]+[.]config[.]ts$',
          '^vitest[.]config[.]ts$',
          '^eslint[.]config[.]js$',
          '^[.]dependency-cruiser[.]js$',
        ],
      },
      to: {},
    },
  ],
  options: {
    exclude: { path: '^(data|data-[^/]*|coverage|tests/artifacts|[.]cache|console/public)/' },
    doNotFollow: { path: '^node_modules/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'], extensions: ['.ts', '.js', '.json'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
