import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../core/registry-client.ts';
import { startIngress, type Ingress } from '../../producers/server.ts';
import { startRegistry, type RunningRegistry } from '../../registry/server.ts';
import { orderTopology } from '../support/order-topology.ts';
import { createTopics, testConfig, testLogger, uniqueName } from '../support/platform.ts';

/**
 * Issue 22's must-show: the registry and the ingress in one process, as `sluice up` runs them, and 1 MiB
 * pathological schemas posted to the registry while the ingress's /healthz is polled. The parse is linear
 * (or refused by a bound), so /healthz answers while the registry request is still in flight. No timing is
 * asserted: that it answered during the request is; the latencies are printed with SLUICE_TEST_REPORT=1.
 */
const topic = uniqueName('orders.placed-pathological');
const MiB = 1024 * 1024;
let registry: RunningRegistry;
let ingress: Ingress;

beforeAll(async () => {
  const base = testConfig();
  await createTopics([{ topic, numPartitions: 1 }]);
  const logger = testLogger(base);
  registry = await startRegistry({ config: base, logger, port: 0 });
  const config = testConfig({ registryUrl: registry.url, registryTopic: base.registryTopic });
  ingress = await startIngress({ config, logger, topology: orderTopology(topic, 1), registry: new RegistryClient(registry.url), port: 0 });
});

afterAll(async () => {
  await ingress?.close();
  await registry?.close();
});

/** The largest body of `make(n)` that the registry's 1 MiB body limit takes (escapes make the JSON longer than the schema). */
function fit(schemaType: string, make: (n: number) => string, n: number): Record<string, unknown> {
  let size = n;
  while (JSON.stringify({ schemaType, schema: make(size) }).length > MiB - 1024) size = Math.floor(size * 0.9);
  return { schemaType, schema: make(size) };
}

const SHAPES: [string, Record<string, unknown>][] = [
  ['PROTOBUF newlines', fit('PROTOBUF', (n) => `${'\n'.repeat(n)}message A { optional int32 a = 1; }`, MiB)],
  ['PROTOBUF unclosed comments', fit('PROTOBUF', (n) => '/* x'.repeat(n), MiB / 4)],
  ['JSON deep nesting', fit('JSON', (n) => `${'{"properties":{"a":'.repeat(n)}{}${'}}'.repeat(n)}`, 50_000)],
  ['JSON properties', fit('JSON', (n) => `{"type":"object","properties":{${Array.from({ length: n }, (_, i) => `"p${i}":{"type":"string"}`).join(',')}}}`, 40_000)],
];
// Each shape is posted this many times in a row: the window the health check must answer in.
const REPEAT = 5;

describe.each(['/compatibility/subjects/:s/versions', '/subjects/:s/versions'])('POST %s with a 1 MiB pathological schema', (route) => {
  it.each(SHAPES)('%s: answered 2xx/4xx while /healthz kept answering', async (_name, body) => {
    const subject = `${topic}-value`;
    let inFlight = true;
    const latencies: number[] = [];
    const poll = (async () => {
      while (inFlight) {
        const started = performance.now();
        const health = await fetch(`${ingress.url}/healthz`);
        await health.arrayBuffer();
        if (inFlight) latencies.push(performance.now() - started);
        expect(health.status).toBe(200);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const statuses: number[] = [];
    for (let i = 0; i < REPEAT; i++) {
      const answer = await fetch(`${registry.url}${route.replace(':s', subject)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
        body: JSON.stringify(body),
      });
      const text = await answer.text();
      expect(answer.status, text.slice(0, 200)).toBeLessThan(500);
      expect(answer.status, text.slice(0, 200)).not.toBe(413);
      statuses.push(answer.status);
    }
    inFlight = false;
    await poll;
    // The registry's request took long enough for the health check to be asked and answered during it.
    expect(latencies.length).toBeGreaterThan(0);
    if (process.env.SLUICE_TEST_REPORT === '1')
      process.stderr.write(`${route} ${_name}: ${statuses.join(',')}; /healthz answered ${latencies.length}x during it, max ${Math.max(...latencies).toFixed(1)} ms\n`);
  });
});
