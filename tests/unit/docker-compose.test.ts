import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig, OPTIONS, PROJECT_ROOT } from '../../core/config.ts';

interface ComposeService {
  image?: string;
  ports?: string[];
  environment?: Record<string, string>;
  command?: string[];
}

const compose = parse(readFileSync(`${PROJECT_ROOT}/docker-compose.kafka.yml`, 'utf8')) as { services: Record<string, ComposeService> };
const defaults = loadConfig({});
const knownEnv = new Set(Object.values(OPTIONS).map((o) => o.env));

function hostPorts(service: ComposeService | undefined): number[] {
  return (service?.ports ?? []).map((p) => Number(p.split(':')[0]));
}

describe("docker-compose.kafka.yml agrees with Sluice's configuration", () => {
  it("has the local broker's Kafka release (4.x) in KRaft mode, the registry, the ingress and a worker", () => {
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(['kafka', 'schema-registry', 'ingress', 'worker']));
    expect(compose.services.kafka?.image).toBe(`apache/kafka:${defaults.kafkaVersion}`);
    expect(compose.services.kafka?.image).toMatch(/^apache\/kafka:4\./);
    expect(compose.services.kafka?.environment?.KAFKA_PROCESS_ROLES).toBe('broker,controller');
    expect(compose.services.kafka?.environment?.KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS).toBe('0');
  });

  it('publishes the default ports', () => {
    expect(hostPorts(compose.services.kafka)).toContain(defaults.kafkaPort);
    expect(hostPorts(compose.services['schema-registry'])).toContain(defaults.registryPort);
    expect(hostPorts(compose.services.ingress)).toContain(defaults.ingressPort);
    expect(defaults.registryUrl).toBe(`http://127.0.0.1:${hostPorts(compose.services['schema-registry'])[0]}`);
  });

  it('configures Sluice services only with options Sluice knows, with valid values', () => {
    for (const name of ['ingress', 'worker']) {
      const env = compose.services[name]?.environment ?? {};
      for (const key of Object.keys(env)) expect(knownEnv, `${name}: ${key}`).toContain(key);
      const config = loadConfig(env);
      const registryHost = new URL(config.registryUrl).hostname;
      expect(Object.keys(compose.services), `${name} registry host`).toContain(registryHost);
      expect(config.kafkaBrokers?.[0], `${name} brokers`).toMatch(/^kafka:\d+$/);
      const brokerPort = config.kafkaBrokers?.[0]?.split(':')[1];
      expect(compose.services.kafka?.environment?.KAFKA_ADVERTISED_LISTENERS).toContain(`kafka:${brokerPort}`);
    }
    expect(loadConfig(compose.services.ingress?.environment ?? {}).ingressPort).toBe(defaults.ingressPort);
    expect(compose.services.worker?.command).toEqual(['npx', 'sluice', 'worker', 'score-orders']);
  });
});
