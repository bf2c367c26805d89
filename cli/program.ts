import { Command, InvalidArgumentError, Option } from 'commander';
import { OPTIONS } from '../core/config.ts';
import { createLogger } from '../core/logger.ts';
import { LocalKafkaError } from '../core/errors.ts';
import type { SecureListener } from '../broker/broker.ts';
import { brokersFlag, configFrom, discoveryRequested } from './flags.ts';

/**
 * The command groups beyond the core ones, in --help order, by the top-level names each registers. A command
 * loads only its own group: `sluice tail` need not load the registry, the ingress, Fastify or the RabbitMQ client,
 * which was most of its start-up (a short tail's CPU is mostly start-up).
 */
const COMMAND_GROUPS: { names: readonly string[]; load: () => Promise<{ register(program: Command): void }> }[] = [
  { names: ['access'], load: () => import('./commands/access.ts') },
  { names: ['topology'], load: () => import('./commands/topology.ts') },
  { names: ['schemas'], load: () => import('./commands/schemas.ts') },
  { names: ['tail'], load: () => import('./commands/tail.ts') },
  { names: ['console'], load: () => import('./commands/console.ts') },
  { names: ['bridge'], load: () => import('./commands/bridge.ts') },
  { names: ['services', 'etcd'], load: () => import('./commands/services.ts') },
  { names: ['lb'], load: () => import('./commands/lb.ts') },
  { names: ['status'], load: () => import('./commands/status.ts') },
  { names: ['dlq'], load: () => import('./commands/dlq.ts') },
];

/** The root options that take a value, so that the command name after them can be found. */
const ROOT_VALUE_OPTIONS = new Set(['--brokers', '--registry-url', '--topology', '--log-level']);

/** The command `args` (argv without node and the script) invoke: the first word that is not a root option or its value. */
export function invokedCommand(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('-')) return arg;
    if (ROOT_VALUE_OPTIONS.has(arg)) i++;
  }
  return undefined;
}

// The core commands' services, loaded by the command that runs them.
const services = () => import('./services.ts');
const serving = () => import('./serve.ts');
const broker = () => import('../broker/broker.ts');
const cluster = () => import('../broker/cluster.ts');

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new InvalidArgumentError('expected a whole number from 1 to 64');
  return n;
}

/**
 * `sluice kafka up --brokers 3`: the root's --brokers <list> (bootstrap servers)
 * receives the value, so a whole number given on the command line is read here
 * as a node count. Undefined when --brokers was not given as a count.
 */
function localNodeCount(command: Command): number | undefined {
  const root = command.parent?.parent;
  const value = brokersFlag(command);
  if (value === undefined || root?.getOptionValueSource('brokers') !== 'cli' || !/^\d+$/.test(value.trim())) return undefined;
  const n = Number(value);
  if (n !== 1 && n !== 3) command.error(`error: kafka up --brokers: expected 1 or 3 nodes, got ${value}`);
  return n;
}

/** Where and how to reach the SASL_SSL listener; the password stays in the data dir's sasl-user.json. */
function secureSummary(secure: SecureListener | undefined): Record<string, unknown> {
  return secure ? { saslSsl: secure.brokers, caFile: secure.caFile, saslUser: secure.username, mechanisms: secure.mechanisms } : {};
}

/** The CLI; with `only`, just the core commands and the group that registers that command (none for a core command, all when no command has that name). */
export async function buildProgram(only?: string): Promise<Command> {
  const program = new Command('sluice')
    .description('Event streaming on Apache Kafka: HTTP ingress, schema registry, stream workers, topology as code.')
    .addOption(new Option('--brokers <list>', 'Kafka bootstrap servers (host:port,...)').env(OPTIONS.kafkaBrokers.env))
    .addOption(new Option('--registry-url <url>', 'schema registry URL').env(OPTIONS.registryUrl.env))
    .addOption(new Option('--topology <file>', 'topology file').env(OPTIONS.topologyFile.env))
    .addOption(new Option('--log-level <level>', 'log level').env(OPTIONS.logLevel.env))
    .addOption(new Option('--discovery', 'register services in etcd (SLUICE_ETCD, or a local etcd started under data/etcd)'))
    .addOption(new Option('--insecure', 'allow listening on a non-loopback address without an access file (anyone reaching it may do anything)'))
    .showHelpAfterError()
    .exitOverride();

  program
    .command('up')
    .description('start everything: Kafka (unless KAFKA_BROKERS is set), the registry, the topology, the ingress and the workers')
    .option('--no-workers', 'start no workers')
    .action(async (flags: { workers: boolean }, command: Command) => {
      const { applyAtStart, discoveryStep, ensureKafka, ingressService, loadTopology, preferRunningCluster, registryIsLocal, registryService, selectWorkers, workerMetricsService, workerService } =
        await services();
      const { internalRegistryUrl } = await import('../access/internal.ts');
      const { serve } = await serving();
      const overrides = flags.workers ? {} : { workers: '' };
      const base = preferRunningCluster(configFrom(command, overrides));
      const ownRegistry = registryIsLocal(base);
      // The services of this process reach its own registry over its scheme, as a per-run internal principal.
      const config = ownRegistry ? preferRunningCluster(configFrom(command, { ...overrides, registryUrl: internalRegistryUrl(base) })) : base;
      const log = createLogger(config, 'sluice');
      const topology = loadTopology(config.topologyFile);
      const discovery = discoveryStep(config, log, discoveryRequested(command));
      process.exitCode = await serve(config, log, [
        () => ensureKafka(config, log),
        () => discovery.start(),
        async () => (ownRegistry ? registryService(config, log, discovery.current()) : undefined),
        async () => void (await applyAtStart(config, topology, log)),
        () => ingressService(config, topology, log, { discovery: discovery.current() }),
        async () => (selectWorkers(config, topology).length > 0 ? workerMetricsService(config, log) : undefined),
        () => Promise.all(selectWorkers(config, topology).map((spec) => workerService(config, topology, spec, log, undefined, discovery.current()))),
      ]);
    });

  program
    .command('registry')
    .description('run the schema registry (Confluent Schema Registry API) against a running cluster')
    .action(async (_flags: object, command: Command) => {
      const [{ discoveryStep, registryService }, { serve }] = await Promise.all([services(), serving()]);
      const config = configFrom(command);
      const log = createLogger(config, 'sluice');
      const discovery = discoveryStep(config, log, discoveryRequested(command));
      process.exitCode = await serve(config, log, [() => discovery.start(), () => registryService(config, log, discovery.current())]);
    });

  program
    .command('ingress')
    .description("run the HTTP ingress for the topology's routes against a running cluster and registry")
    .option('--no-apply', 'do not create missing topics and register schemas first')
    .option('--instances <n>', 'replicas to run in this process, on ports SLUICE_INGRESS_PORT + 0..n-1', positiveInt, 1)
    .action(async (flags: { apply: boolean; instances: number }, command: Command) => {
      const [{ applyAtStart, discoveryStep, ingressService, loadTopology }, { serve }] = await Promise.all([services(), serving()]);
      const config = configFrom(command);
      const log = createLogger(config, 'sluice');
      const topology = loadTopology(config.topologyFile);
      const discovery = discoveryStep(config, log, discoveryRequested(command));
      const replicas = Array.from({ length: flags.instances }, (_, i) => i);
      process.exitCode = await serve(config, log, [
        () => discovery.start(),
        async () => (flags.apply ? void (await applyAtStart(config, topology, log)) : undefined),
        () =>
          Promise.all(
            replicas.map((i) =>
              ingressService(config, topology, log, {
                discovery: discovery.current(),
                ...(flags.instances > 1 ? { replica: i, port: config.ingressPort === 0 ? 0 : config.ingressPort + i } : {}),
              }),
            ),
          ),
      ]);
    });

  program
    .command('worker <name>')
    .description('run one worker of the topology in its consumer group')
    .option('--instances <n>', 'consumers of the group to run in this process', positiveInt, 1)
    .action(async (name: string, flags: { instances: number }, command: Command) => {
      const [{ discoveryStep, findWorker, loadTopology, workerMetricsService, workerService }, { serve }] = await Promise.all([services(), serving()]);
      const config = configFrom(command);
      const log = createLogger(config, 'sluice');
      const topology = loadTopology(config.topologyFile);
      const spec = findWorker(topology, name);
      const instances = Array.from({ length: flags.instances }, (_, i) => i);
      const discovery = discoveryStep(config, log, discoveryRequested(command));
      process.exitCode = await serve(config, log, [
        () => discovery.start(),
        () => workerMetricsService(config, log),
        () => Promise.all(instances.map((i) => workerService(config, topology, spec, log, flags.instances > 1 ? i : undefined, discovery.current()))),
      ]);
    });

  const kafka = program.command('kafka').description('the local Apache Kafka broker or cluster (KRaft), resolved with Maven');
  kafka
    .command('up')
    .description('start the local broker (or, with --brokers N, a local N-node cluster) and return once it answers')
    // Declared for --help only: the root's --brokers <list> takes the value, and localNodeCount reads it there.
    .option('--brokers <n>', 'number of nodes: 1 (default) or 3 for a replicated cluster on ports 9092, 9094, 9096')
    .action(async (_flags: object, command: Command) => {
      const nodes = localNodeCount(command);
      // A count is not a bootstrap list: the cluster to use then comes from KAFKA_BROKERS alone.
      const config = nodes === undefined ? configFrom(command) : configFrom(command, { kafkaBrokers: process.env.KAFKA_BROKERS ?? '' });
      const log = createLogger(config, 'kafka');
      if (config.kafkaBrokers) return log.info({ brokers: config.kafkaBrokers }, 'KAFKA_BROKERS is set: using that cluster, starting nothing');
      const [{ localKafkaOptions, runningPid, startLocalKafka }, { localClusterDir, localClusterOptions, runningCluster, startLocalCluster }] = await Promise.all([broker(), cluster()]);
      if ((nodes ?? 1) > 1) {
        if (runningPid(localKafkaOptions(config).dataDir) !== undefined)
          throw new LocalKafkaError('the single local broker is running; `sluice kafka down` stops it before a cluster can take its ports');
        const started = await startLocalCluster(localClusterOptions(config, nodes!), log);
        return log.info(
          { brokers: started.brokers, dataDir: localClusterDir(config), ...secureSummary(started.secure) },
          started.started ? 'Kafka cluster started' : 'Kafka cluster was already running',
        );
      }
      const clusterBrokers = runningCluster(localClusterDir(config));
      if (clusterBrokers) return log.info({ brokers: clusterBrokers }, 'the local Kafka cluster is running: using it, starting nothing');
      const options = localKafkaOptions(config);
      const started = await startLocalKafka(options, log);
      log.info({ brokers: started.brokers, pid: started.pid, dataDir: options.dataDir, ...secureSummary(started.secure) }, started.started ? 'Kafka started' : 'Kafka was already running');
    });
  kafka
    .command('down')
    .description('stop the local broker or cluster cleanly')
    .action(async (_flags: object, command: Command) => {
      const config = configFrom(command);
      const log = createLogger(config, 'kafka');
      if (config.kafkaBrokers) return log.info({ brokers: config.kafkaBrokers }, 'KAFKA_BROKERS is set: that cluster is not ours to stop');
      const [{ localKafkaOptions, stopLocalKafka }, { localClusterDir, stopLocalCluster }] = await Promise.all([broker(), cluster()]);
      const [single, several] = await Promise.all([stopLocalKafka(localKafkaOptions(config).dataDir, log), stopLocalCluster(localClusterDir(config), log)]);
      if (!single && !several) log.info('no local Kafka was running');
    });

  // Further command groups live in cli/commands/<group>.ts, each exporting register(program).
  // A core command needs no group; a name no command has (help, a typo) gets every group, for the full help.
  const core = only !== undefined && program.commands.some((command) => command.name() === only);
  const wanted = COMMAND_GROUPS.filter((group) => only !== undefined && group.names.includes(only));
  for (const group of core ? [] : wanted.length > 0 ? wanted : COMMAND_GROUPS) (await group.load()).register(program);

  return program;
}
