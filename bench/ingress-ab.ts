import { loadConfig, PROJECT_ROOT } from '../core/config.ts';
import { createLogger } from '../core/logger.ts';
import { RegistryClient } from '../core/registry-client.ts';
import { startRegistry } from '../registry/server.ts';
import { argValue, benchTopology, cpuSeconds, cpuUsPerEvent, eventPool, median, newRunId, spawnBench, withAdmin, type BenchEnv } from './common.ts';
import { loadHttp } from './ingress.ts';

/**
 * The ingress of another checkout against this one, on a running broker (KAFKA_BROKERS, default 127.0.0.1:9092):
 * both started side by side as bench/ingress.ts children, one shape at a time, rounds alternated, each round's
 * events/s and CPU µs per event of each ingress process (from /proc), then the medians. For A/B of a change on a
 * shared machine, where CPU per event holds up better than events/s. Not part of `npm run bench`.
 *
 *   node bench/ingress-ab.ts <other checkout> [--rounds 3] [--duration 4] [--connections 128] [--shapes 1,100] [--cpu-prof <dir>]
 *
 * With --cpu-prof each ingress writes a profile to <dir>; `node bench/profile-summary.ts --stages <profile> <µs> --last <s>`
 * reads only its last seconds (the timed rounds, without start-up and warm-up).
 */

const args = process.argv.slice(2);
const other = args[0];
if (other === undefined || other.startsWith('--')) throw new Error('usage: node bench/ingress-ab.ts <other checkout> [--rounds n] [--duration s] [--connections n] [--shapes 1,100] [--cpu-prof dir]');
const roots = [other, PROJECT_ROOT];
const rounds = Number(argValue(args, '--rounds') ?? 3);
const durationS = Number(argValue(args, '--duration') ?? 4);
const connections = Number(argValue(args, '--connections') ?? 128);
const shapes = (argValue(args, '--shapes') ?? '1,100').split(',').map(Number);
const profileDir = argValue(args, '--cpu-prof');
const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');

const runId = newRunId();
const config = loadConfig(process.env, { kafkaBrokers: brokers.join(','), registryTopic: `_schemas_ab_${runId}`, logLevel: 'warn', logFormat: 'json' });
const registry = await startRegistry({ config, logger: createLogger(config, 'ab-registry', 2), port: 0 });
const prefix = `bench.ab.${runId}`;
const env: BenchEnv = {
  brokers,
  registryUrl: registry.url,
  runId,
  inputTopic: `${prefix}.orders.placed`,
  outputTopic: `${prefix}.orders.scored`,
  deadLetterTopic: `${prefix}.orders.placed.dlq`,
  partitions: 6,
};
await withAdmin(brokers, (admin) => admin.createTopics([env.inputTopic, env.outputTopic, env.deadLetterTopic].map((name) => ({ name, partitions: env.partitions, replicationFactor: 1 }))));
const schema = benchTopology(env).topics.find((t) => t.name === env.inputTopic)!.valueSchema!;
await new RegistryClient(registry.url).register(schema.subject, schema.text);
const pool = eventPool();
const children = roots.map((root, i) => {
  const nodeArgs = profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=ingress-${i === 0 ? 'other' : 'this'}-${shapes.join('-')}-${Date.now()}.cpuprofile`];
  return spawnBench('ingress.ts', [], { SLUICE_BENCH_ENV: JSON.stringify(env) }, nodeArgs, root);
});
try {
  const urls = await Promise.all(children.map(async (c) => `${String((await c.ready).url)}/v1/orders`));
  // Both reach steady state (JIT, connections, producer id) before anything counts.
  for (const url of urls) {
    await loadHttp({ url, connections: 16, durationS: 2, bodies: pool.singleBodies, eventsPerRequest: 1 });
    await loadHttp({ url, connections: 16, durationS: 2, bodies: pool.batchBodies, eventsPerRequest: 100 });
  }
  let turn = 0;
  for (const perRequest of shapes) {
    const figures = roots.map(() => ({ eventsPerSec: [] as number[], cpuUs: [] as number[] }));
    for (let round = 0; round < rounds; round++) {
      for (const i of roots.map((_, k) => (k + turn) % roots.length)) {
        const pid = children[i]!.process.pid;
        const before = cpuSeconds(pid);
        const load = await loadHttp({ url: urls[i]!, connections, durationS, bodies: perRequest === 1 ? pool.singleBodies : pool.batchBodies, eventsPerRequest: perRequest });
        const cpu = cpuUsPerEvent(before, cpuSeconds(pid), load.eventsPerSec * durationS);
        figures[i]!.eventsPerSec.push(load.eventsPerSec);
        figures[i]!.cpuUs.push(cpu?.process ?? Number.NaN);
        console.log(
          `${roots[i]} ×${perRequest} round ${round + 1}: ${load.eventsPerSec} events/s, ${cpu?.process} µs CPU/event (machine ${cpu?.machine}), p99 ${load.latencyMs.p99} ms, non-2xx ${load.non2xx + load.errors}`,
        );
      }
      turn++;
    }
    roots.forEach((root, i) =>
      console.log(`median ${root} ×${perRequest} @${connections}: ${median(figures[i]!.eventsPerSec)} events/s, ${median(figures[i]!.cpuUs)} µs CPU/event (${JSON.stringify(figures[i])})`),
    );
  }
} finally {
  await Promise.all(children.map((c) => c.stop()));
  await registry.close();
}
