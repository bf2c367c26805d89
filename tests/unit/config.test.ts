import { describe, expect, it } from 'vitest';
import { bootstrapServers, loadConfig, OPTIONS } from '../../core/config.ts';
import { ConfigError } from '../../core/errors.ts';

describe('configuration', () => {
  it('has a default and an environment variable for every option, and the defaults are valid', () => {
    for (const [key, spec] of Object.entries(OPTIONS)) {
      // OTEL_*: the names OpenTelemetry standardises, which collectors and platforms already set.
      expect(spec.env, key).toMatch(/^(KAFKA|SLUICE|OTEL)_[A-Z_]+$/);
      expect(typeof spec.default, key).toBe('string');
      expect(spec.description.length, key).toBeGreaterThan(10);
    }
    const config = loadConfig({});
    expect(config.ingressPort).toBe(8080);
    expect(config.registryPort).toBe(8081);
    expect(config.kafkaPort).toBe(9092);
    expect(config.kafkaBrokers).toBeUndefined();
    expect(bootstrapServers(config)).toEqual(['127.0.0.1:9092']);
  });

  it('reads environment variables', () => {
    const config = loadConfig({ KAFKA_BROKERS: 'a:1, b:2', SLUICE_INGRESS_PORT: '9000', SLUICE_REGISTRY_URL: 'http://r:8081/' });
    expect(config.kafkaBrokers).toEqual(['a:1', 'b:2']);
    expect(bootstrapServers(config)).toEqual(['a:1', 'b:2']);
    expect(config.ingressPort).toBe(9000);
    expect(config.registryUrl).toBe('http://r:8081');
  });

  it.each([
    ['SLUICE_INGRESS_PORT', 'eighty', /SLUICE_INGRESS_PORT: expected a whole number/],
    ['SLUICE_INGRESS_PORT', '70000', /SLUICE_INGRESS_PORT: expected a number from 0 to 65535/],
    ['KAFKA_BROKERS', 'localhost', /KAFKA_BROKERS: expected host:port/],
    ['SLUICE_REGISTRY_URL', 'ftp://x', /SLUICE_REGISTRY_URL: expected an http\(s\) URL/],
    ['SLUICE_LOG_LEVEL', 'loud', /SLUICE_LOG_LEVEL: expected one of trace/],
    ['SLUICE_KAFKA_HEAP', '2 GB', /SLUICE_KAFKA_HEAP: expected a JVM size/],
  ])('names the bad option %s=%s', (env, value, message) => {
    expect(() => loadConfig({ [env]: value })).toThrowError(ConfigError);
    expect(() => loadConfig({ [env]: value })).toThrowError(message);
  });

  it('reports every bad option at once', () => {
    expect(() => loadConfig({ SLUICE_INGRESS_PORT: 'x', SLUICE_LOG_LEVEL: 'y' })).toThrowError(/2 invalid options:[\s\S]*SLUICE_INGRESS_PORT[\s\S]*SLUICE_LOG_LEVEL/);
  });
});
