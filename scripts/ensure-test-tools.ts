import { spawnSync } from 'node:child_process';

/**
 * `npm test` cross-checks Sluice against independent clients from outside
 * Node: kcat (librdkafka) reads topics in the end-to-end test, and chromium
 * runs the console tests. On a machine
 * where we are root with apt-get (CI, fresh dev boxes) the tools are installed;
 * elsewhere the tests that need them say what to install and are skipped.
 */
const TOOLS = [
  { command: 'kcat', args: ['-V'], apt: 'kcat' },
  // The console tests drive Debian's chromium headless through playwright-core (no browser download).
  { command: 'chromium', args: ['--version'], apt: 'chromium' },
  // Discovery and load-balancer tests run the real etcd and HAProxy from Debian.
  { command: 'etcd', args: ['--version'], apt: 'etcd-server' },
  { command: 'etcdctl', args: ['version'], apt: 'etcd-client' },
  { command: 'haproxy', args: ['-v'], apt: 'haproxy' },
  { command: 'nginx', args: ['-v'], apt: 'nginx' },
  // The bridge tests need a RabbitMQ; the package's server starts with `rabbitmq-server -detached`.
  { command: 'rabbitmqctl', args: ['version'], apt: 'rabbitmq-server' },
  // `promtool check rules` validates ops/prometheus/alerts.yml; Debian ships it in the prometheus package.
  { command: 'promtool', args: ['--version'], apt: 'prometheus' },
  // Confluent's own Python serializers talk to Sluice's registry in the interop test. Debian's
  // python3 (not a pyenv one on PATH) is the interpreter these packages install into.
  {
    command: '/usr/bin/python3',
    args: ['-c', 'import confluent_kafka.schema_registry, google.protobuf, jsonschema'],
    apt: 'python3-confluent-kafka python3-protobuf python3-jsonschema python3-requests',
  },
];

function has(command: string, args: string[]): boolean {
  const result = spawnSync(command, args, { stdio: 'ignore' });
  return !result.error && result.status === 0;
}

const missing = TOOLS.filter((t) => !has(t.command, t.args));
if (missing.length > 0) {
  const packages = missing.flatMap((t) => t.apt.split(' '));
  const canInstall = process.getuid?.() === 0 && has('apt-get', ['--version']);
  if (canInstall) {
    process.stderr.write(`installing ${packages.join(', ')} for the tests (apt-get)\n`);
    const update = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
    const install = update.status === 0 ? spawnSync('apt-get', ['install', '-y', '-qq', ...packages], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }) : update;
    if (install.status !== 0) process.stderr.write(`could not install ${packages.join(', ')}; tests that need them will be skipped\n`);
  } else {
    process.stderr.write(`${packages.join(', ')} not installed (apt-get install ${packages.join(' ')}); tests that need them will be skipped\n`);
  }
}
